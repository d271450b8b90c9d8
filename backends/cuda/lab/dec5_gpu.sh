#!/bin/bash
# One GPU-machine call for the decode GEMV's per-launch kernel rule and the TMA weight ring
# (issue 5, cuda-gemv: TESSERA_CUDA_GEMV_PIPE, TESSERA_CUDA_GEMV_TMA_CFG), from the repo root
# against a relocatable bundle (default .dev/bundle-cuda-dec, packed as .dev/bundle-cuda-dec.tar.gz
# if that is what was carried; cuda_gemv_lab, bench_cuda_kernels and the test binaries in bin/).
# Steps (each skippable):
#   1. LAB=1: cuda_gemv_lab --quick (variants 10 = 8-warp plain half chunks, 11 / 12 = the TMA
#      ring with half / whole-chunk units at several configurations; the checks run them
#      against the GEMM and the plain launches);
#   2. ENGINE=1: engine tg128 per shape with TESSERA_CUDA_GEMV_PIPE = each of $PIPES (d = unset,
#      the default rule; P/CFG also sets TESSERA_CUDA_GEMV_TMA_CFG=CFG; A/B in one call, same
#      machine); GEMV_ONLY=1: the lab's GEMV checks only (GEMV_LAB_GEMV_ONLY);
#   3. KERNELS=1: bench_cuda_kernels --quick, defaults;
#   4. TESTS=1: CUDA op conformance, text golden, server scheduler with TESSERA_CUDA_GEMV_PIPE =
#      each of $TESTS_PIPES (d: unset).
# Logs in $OUT (dec5_*.log).
B=${TESSERA_BUNDLE:-.dev/bundle-cuda-dec}
if [ ! -d "$B" ] && [ -f "$B.tar.gz" ]; then
  tar -C "$(dirname "$B")" -xzf "$B.tar.gz"
fi
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
if [ "${LAB:-1}" = 1 ]; then
  echo "=== gemv lab --quick $(date +%T)"
  env ${GEMV_ONLY:+GEMV_LAB_GEMV_ONLY=1} timeout "${LAB_TIMEOUT:-150}" "$B/bin/cuda_gemv_lab" --quick > "$OUT/dec5_lab.log" 2>&1
  LAB_RC=$?
  echo "lab rc=$LAB_RC"
  if [ "$LAB_RC" = 124 ]; then  # a kernel hung (the TMA ring's barriers): skip its runs
    PIPES="d 0" TESTS_PIPES=d
    echo "lab timed out: PIPES=$PIPES TESTS_PIPES=$TESTS_PIPES"
  fi
  grep -E "FAILED|DIFFERENT|failures|^copy" "$OUT/dec5_lab.log" | head
  echo "same bits lines: $(grep -c 'same bits' "$OUT/dec5_lab.log")"
  sed -n '/^shape /,$p' "$OUT/dec5_lab.log" | head -16
fi
. backends/cuda/lab/lab_common.sh  # bench NAME DIR ENV...
if [ "${ENGINE:-1}" = 1 ]; then
  for shape in ${SHAPES:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}; do
    echo "=== $shape $(date +%T)"
    timeout 150 python3 bench/make_checkpoint.py --shape "$shape" --out "/tmp/ck_$shape" 2>&1 | tail -1
    for pp in ${PIPES:-d 0}; do  # d: the default (TESSERA_CUDA_GEMV_PIPE unset)
      if [ "$pp" = d ]; then
        bench "$shape pipe=default" "/tmp/ck_$shape" TESSERA_X=1
      elif [ "${pp#*/}" != "$pp" ]; then  # PIPE/CFG: the TMA ring's configuration too
        bench "$shape pipe=$pp" "/tmp/ck_$shape" TESSERA_CUDA_GEMV_PIPE=${pp%/*} \
          TESSERA_CUDA_GEMV_TMA_CFG=${pp#*/}
      else
        bench "$shape pipe=$pp" "/tmp/ck_$shape" TESSERA_CUDA_GEMV_PIPE=$pp
      fi
    done 2>&1 | tee -a "$OUT/dec5_engine.log"
    rm -rf "/tmp/ck_$shape"
  done
fi
if [ "${KERNELS:-1}" = 1 ] && [ -x "$B/bin/bench_cuda_kernels" ]; then
  kernels_quick dec5
fi
if [ "${TESTS:-1}" = 1 ]; then
  suites_per_pipe dec5  # TESTS_PIPES
fi
echo "=== end $(date +%T)"
