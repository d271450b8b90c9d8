#!/bin/bash
# One GPU-machine call for the pipelined prefill attention (cuda-attn3, issue 5), from the repo
# root, against a relocatable bundle (default .dev/bundle-cuda-attn3, unpacked from
# .dev/bundle-cuda-attn3.tar.gz when only the archive travelled; bench_cuda_kernels,
# op_conformance_test, text_golden_test and server_scheduler_test copied into its bin/).
# Steps (each one skippable with =0):
#   LAB=1     kernel lab --attention: legacy / tiled / pipe1 / pipe2 / default prefill timings and
#             their bit checks (dense, window + soft-cap, paged, two sequences; decode vs prefill)
#   TESTS=1   CUDA op conformance, text golden, server_scheduler_test (lab_common.sh cuda_suites)
#   ENGINE=1  `engine bench -p 2048 -n 0 -r 2` on SHAPES, default vs TESSERA_CUDA_ATTN=tiled
#             (and ENGINE_EXTRA="pipe1 ..." more knob values)
#   DECODE=0  `-p 0 -n 64 -r 1 --parallel 64` on DECODE_SHAPES (default the 8B): default, then
#             TESSERA_CUDA_ATTN=tiled, then the default again
# Logs go to $OUT.
B=${TESSERA_BUNDLE:-.dev/bundle-cuda-attn3}
[ -d "$B" ] || { mkdir -p "$(dirname "$B")" && tar xzf "$B.tar.gz" -C "$(dirname "$B")"; }
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
P=$PWD/$B/lib/tessera/backends
E=$B/bin/engine
# shellcheck source=lab_common.sh
source backends/cuda/lab/lab_common.sh
SHAPES=${SHAPES:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [ "${ENGINE:-1}" = 1 ] || [ "${DECODE:-0}" = 1 ]; then
  # shellcheck disable=SC2086
  make_checkpoints $SHAPES
fi
if [ "${LAB:-1}" = 1 ]; then
  echo "=== bench_cuda_kernels --attention $(date +%T)"
  timeout 150 "$B/bin/bench_cuda_kernels" --attention > "$OUT/attn3_bench.log" 2>&1
  echo "rc=$?"
  grep -E "^attention|^accuracy|FAIL|summary" "$OUT/attn3_bench.log"
fi
if [ "${TESTS:-1}" = 1 ]; then
  echo "=== CUDA suites $(date +%T)"
  cuda_suites
fi
# run_pp SHAPE KNOB: pp2048 of /tmp/SHAPE with TESSERA_CUDA_ATTN=KNOB ("" = the default).
run_pp() {
  echo "--- $1 attn=${2:-default}" | tee -a "$OUT/attn3_engine.log"
  TESSERA_CUDA_ATTN=$2 timeout 90 "$E" bench --backend cuda "/tmp/$1" -p 2048 -n 0 -r 2 2>&1 |
    grep -E "^\| (pp|tg)|rror" | tail -3 | tee -a "$OUT/attn3_engine.log"
}
if [ "${ENGINE:-1}" = 1 ]; then
  echo "=== engine pp2048 $(date +%T)"
  for s in $SHAPES; do
    while [ ! -f "/tmp/$s.done" ]; do sleep 1; done
    for k in "" tiled ${ENGINE_EXTRA:-}; do run_pp "$s" "$k"; done
  done
fi
if [ "${DECODE:-0}" = 1 ]; then
  echo "=== engine decode x64 $(date +%T)"
  for s in ${DECODE_SHAPES:-llama-3.1-8b}; do
    while [ ! -f "/tmp/$s.done" ]; do sleep 1; done
    for k in "" tiled ""; do
      echo "--- $s x64 attn=${k:-default}" | tee -a "$OUT/attn3_engine.log"
      TESSERA_CUDA_ATTN=$k timeout 90 "$E" bench --backend cuda "/tmp/$s" -p 0 -n 64 -r 1 \
        --parallel 64 2>&1 | grep -E "^\| (pp|tg)|rror" | tail -3 | tee -a "$OUT/attn3_engine.log"
    done
  done
fi
echo "=== done $(date +%T)"
