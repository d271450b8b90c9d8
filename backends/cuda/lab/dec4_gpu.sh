#!/bin/bash
# One GPU-machine call for the rolled weight loads of the decode GEMV (issue 5, cuda-gemv,
# TESSERA_CUDA_GEMV_PIPE), from the repo root against a relocatable bundle (default
# .dev/bundle-cuda-gemv; cuda_gemv_lab, bench_cuda_kernels and the test binaries in bin/ where
# present). Steps (each skippable):
#   1. LAB=1: cuda_gemv_lab --quick (its variants 7 / 8 are the rolled loads with half / full
#      chunks, next to 5 / 6 without; the checks run them against the GEMM and the plain launches);
#   2. ENGINE=1: engine tg128 per shape with TESSERA_CUDA_GEMV_PIPE = each of $PIPES (d = unset,
#      the default; A/B in one call, same machine);
#   3. KERNELS=1: bench_cuda_kernels --quick (if in the bundle), defaults;
#   4. TESTS=1: CUDA op conformance, text golden, server scheduler with TESSERA_CUDA_GEMV_PIPE =
#      each of $TESTS_PIPES (d: unset, the default).
# The bundle may come packed (.dev/cuda-gemv-pack/b.tar.xz, unpacked into .dev first) to fit the
# 64 MiB a call carries. Logs in $OUT (dec4_*.log).
B=${TESSERA_BUNDLE:-.dev/bundle-cuda-gemv}
if [ ! -d "$B" ] && [ -f .dev/cuda-gemv-pack/b.tar.xz ]; then
  tar -C .dev -xJf .dev/cuda-gemv-pack/b.tar.xz
fi
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
if [ "${LAB:-1}" = 1 ]; then
  echo "=== gemv lab --quick $(date +%T)"
  timeout "${LAB_TIMEOUT:-150}" "$B/bin/cuda_gemv_lab" --quick > "$OUT/dec4_lab.log" 2>&1
  echo "lab rc=$?"
  grep -E "FAILED|DIFFERENT|failures|^copy" "$OUT/dec4_lab.log" | head
  echo "same bits lines: $(grep -c 'same bits' "$OUT/dec4_lab.log")"
  grep -E "^prologue.* (8B|1B)-|^group 8B|^group 1B" "$OUT/dec4_lab.log"
  sed -n '/^shape /,$p' "$OUT/dec4_lab.log" | head -16
fi
. backends/cuda/lab/lab_common.sh  # bench NAME DIR ENV...
if [ "${ENGINE:-1}" = 1 ]; then
  for shape in ${SHAPES:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}; do
    echo "=== $shape $(date +%T)"
    timeout 150 python3 bench/make_checkpoint.py --shape "$shape" --out "/tmp/ck_$shape" 2>&1 | tail -1
    for pp in ${PIPES:-d 0}; do  # d: the default (TESSERA_CUDA_GEMV_PIPE unset)
      if [ "$pp" = d ]; then
        bench "$shape pipe=default" "/tmp/ck_$shape" TESSERA_X=1
      else
        bench "$shape pipe=$pp" "/tmp/ck_$shape" TESSERA_CUDA_GEMV_PIPE=$pp
      fi
    done 2>&1 | tee -a "$OUT/dec4_engine.log"
    rm -rf "/tmp/ck_$shape"
  done
fi
if [ "${KERNELS:-1}" = 1 ] && [ -x "$B/bin/bench_cuda_kernels" ]; then
  kernels_quick dec4
fi
if [ "${TESTS:-1}" = 1 ]; then
  suites_per_pipe dec4  # TESTS_PIPES
fi
echo "=== end $(date +%T)"
