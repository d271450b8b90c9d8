#!/bin/bash
# x split in the TMA GEMM's producer (cuda-gemm3, issue 5; lab/NOTES.md "x split in the TMA
# producer"), one GPU call from the repo root, against the bundle .dev/bundle-cuda-gemm3 (carried
# as .dev/bundle-cuda-gemm3.tar.gz; cuda_gemm_lab and the suites in its bin/). Steps (each
# skippable, logs in $OUT):
#   LAB=1     cuda_gemm_lab --wgmma-only --wg-from=7: GEMV-vs-GEMM bit checks of the default
#             dispatch and every TMA configuration (the x-splitting ones 14 .. 17 get no planes,
#             the persistent ones 18 .. 20 run > 1 tile a CTA), timings next to cuBLASLt; then the
#             default dispatch alone (bit checks + timings) with $AB_VAR (default
#             TESSERA_CUDA_GEMM_PERSIST) set to each of AB_VALUES (default "1 0")
#   TESTS=1   CUDA op conformance, text golden, server_scheduler_test (default dispatch)
#   ENGINE=1  engine bench -p 2048 -n 0 -r 2 on SHAPES, exact and bf16, $AB_VAR = each of
#             ENGINE_ORDER (default "0 1 0 1") in turn
# Call 1 (x split, AB_VAR=TESSERA_CUDA_GEMM_XSPLIT AB_VALUES="1 0" ENGINE_ORDER="0 1", 8B only)
# and call 2 (persistent tiles) of 2026-11-26: lab/NOTES.md.
B=.dev/bundle-cuda-gemm3
[ -f .dev/bundle-cuda-gemm3.tar.gz ] && tar -xzf .dev/bundle-cuda-gemm3.tar.gz -C .dev
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
P=$PWD/$B/lib/tessera/backends
E=$PWD/$B/bin/engine
. backends/cuda/lab/lab_common.sh  # cuda_suites, find_cublaslt, make_checkpoints
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
find_cublaslt
SHAPES=${SHAPES:-llama-3.1-8b llama-3.2-1b qwen2.5-0.5b}
AB_VAR=${AB_VAR:-TESSERA_CUDA_GEMM_PERSIST}
if [ "${ENGINE:-1}" = 1 ]; then  # checkpoints in the background while the lab runs
  # shellcheck disable=SC2086
  make_checkpoints $SHAPES
fi
if [ "${LAB:-1}" = 1 ]; then
  echo "=== gemm lab $(date +%T)"
  timeout "${LAB_TIMEOUT:-120}" "$B/bin/cuda_gemm_lab" --wgmma-only --wg-from=7 > "$OUT/lab.log" 2>&1
  echo "lab rc=$? $(date +%T)"
  grep -E "FAILED|differ|summary|^device|^wgmma" "$OUT/lab.log" | head -30
  grep -c " ok$" "$OUT/lab.log"
  grep -E "^gemm " "$OUT/lab.log" | sed -e 's/ split_us=[0-9.]*//'
  for x in ${AB_VALUES:-1 0}; do
    echo "=== gemm lab default dispatch, $AB_VAR=$x $(date +%T)"
    env "$AB_VAR=$x" timeout 60 "$B/bin/cuda_gemm_lab" --wgmma-only --wg-from=99 \
      --default-only > "$OUT/lab_x$x.log" 2>&1
    echo "lab x$x rc=$?"
    grep -E "FAILED|summary" "$OUT/lab_x$x.log" | head
    grep -c " ok$" "$OUT/lab_x$x.log"
    grep -E "^gemm " "$OUT/lab_x$x.log"
  done
fi
if [ "${TESTS:-1}" = 1 ]; then
  echo "=== suites $(date +%T)"
  cuda_suites
fi
if [ "${ENGINE:-1}" = 1 ]; then
  for s in $SHAPES; do
    while [ ! -f "/tmp/$s.done" ]; do sleep 1; done
    for prec in exact bf16; do
      for x in ${ENGINE_ORDER:-0 1 0 1}; do
        echo "--- $s $prec $AB_VAR=$x $(date +%T)"
        env "$AB_VAR=$x" timeout 90 "$E" bench --backend cuda "/tmp/$s" -p 2048 -n 0 \
          -r 2 --backend-opt "cuda.matmul_precision=$prec" 2>&1 | grep -E "^\| pp|error" | tail -2
      done
    done
  done 2>&1 | tee "$OUT/engine.log"
fi
