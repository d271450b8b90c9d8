#!/bin/bash
# One GPU-machine call for the early weight fetch of the decode GEMV (issue 5, cuda-dec),
# from the repo root against a relocatable bundle (default .dev/bundle-cuda-dec; cuda_gemv_lab,
# bench_cuda_kernels and the test binaries in bin/ where present). Steps (each skippable):
#   1. ENGINE=1: engine tg128 per shape with TESSERA_CUDA_GEMV_PREF = each of $PREFS (d = unset,
#      the default; A/B in one call, same machine); PROFILE=1 adds the per-op profile (graphs
#      off) for PROF_PREFS;
#   2. LAB=1: cuda_gemv_lab --quick with TESSERA_CUDA_GEMV_PREF = each of $LAB_PREFS (d: default);
#   3. KERNELS=1: bench_cuda_kernels --quick (if in the bundle), TESTS_PREF as below;
#   4. TESTS=1: CUDA op conformance, text golden, server scheduler with TESTS_PREF (unset:
#      default).
# The bundle may come packed (.dev/cuda-dec-pack/b.tar.xz, unpacked into .dev first) to fit the
# 64 MiB a call carries.
# Logs in $OUT (dec3_*.log).
B=${TESSERA_BUNDLE:-.dev/bundle-cuda-dec}
if [ ! -d "$B" ] && [ -f .dev/cuda-dec-pack/b.tar.xz ]; then tar -C .dev -xJf .dev/cuda-dec-pack/b.tar.xz; fi
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
. backends/cuda/lab/lab_common.sh  # bench NAME DIR ENV...
if [ "${ENGINE:-1}" = 1 ]; then
  for shape in ${SHAPES:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}; do
    echo "=== $shape $(date +%T)"
    timeout 150 python3 bench/make_checkpoint.py --shape "$shape" --out "/tmp/ck_$shape" 2>&1 | tail -1
    {
      for pf in ${PREFS:-d 0}; do  # d: the default (TESSERA_CUDA_GEMV_PREF unset)
        if [ "$pf" = d ]; then
          bench "$shape pref=default" "/tmp/ck_$shape" TESSERA_X=1 $EXTRA_ENV
        else
          bench "$shape pref=$pf" "/tmp/ck_$shape" TESSERA_CUDA_GEMV_PREF=$pf $EXTRA_ENV
        fi
      done
      if [ "${PROFILE:-0}" = 1 ]; then
        for pf in ${PROF_PREFS:-0 2}; do
          TESSERA_CUDA_GEMV_PREF=$pf TESSERA_CUDA_PROFILE=1 timeout 120 "$B/bin/engine" bench \
            --backend cuda "/tmp/ck_$shape" -p 16 -n 128 -r 1 > "$OUT/dec3_profile_${shape}_$pf.log" 2>&1
          echo "--- profile pref=$pf (decode ops, us a call)"
          grep -E "\[decode\]" "$OUT/dec3_profile_${shape}_$pf.log" | head -10
        done
      fi
    } 2>&1 | tee -a "$OUT/dec3_engine.log"
    rm -rf "/tmp/ck_$shape"
  done
fi
if [ "${LAB:-1}" = 1 ]; then
  for lp in ${LAB_PREFS:-d}; do  # d: the default
    [ "$lp" = d ] && lpv="" || lpv=$lp
    echo "=== gemv lab --quick PREF=$lp $(date +%T)"
    TESSERA_CUDA_GEMV_PREF=$lpv timeout "${LAB_TIMEOUT:-150}" "$B/bin/cuda_gemv_lab" --quick \
      > "$OUT/dec3_lab_$lp.log" 2>&1
    echo "lab rc=$?"
    grep -E "FAILED|DIFFERENT|failures|^copy" "$OUT/dec3_lab_$lp.log" | head
    echo "same bits lines: $(grep -c 'same bits' "$OUT/dec3_lab_$lp.log")"
    grep -E "^group 8B.*v=0 pdl=1|^group 1B.*v=0 pdl=1|^prologue" "$OUT/dec3_lab_$lp.log"
    sed -n '/^shape /,$p' "$OUT/dec3_lab_$lp.log" | head -12
  done
fi
if [ "${KERNELS:-1}" = 1 ] && [ -x "$B/bin/bench_cuda_kernels" ]; then
  echo "=== bench_cuda_kernels --quick $(date +%T)"
  TESSERA_CUDA_GEMV_PREF=${TESTS_PREF:-} timeout 150 "$B/bin/bench_cuda_kernels" --quick \
    > "$OUT/dec3_kernels.log" 2>&1
  echo "rc=$?"
  grep -iE "fail|summary|mismatch" "$OUT/dec3_kernels.log" | head -10
fi
if [ "${TESTS:-1}" = 1 ]; then
  echo "=== tests PREF=${TESTS_PREF:-default} $(date +%T)"
  TESSERA_CUDA_GEMV_PREF=${TESTS_PREF:-} OUT=$OUT/tests TESSERA_BUNDLE=$B LAB=0 TESTS=1 SCHED=1 \
    bash backends/cuda/lab/gpu_lab.sh 2>&1 | grep -v "^NVIDIA"
  for f in conformance golden scheduler; do cp "$OUT/tests/$f.log" "$OUT/dec3_$f.log"; done
  rm -rf "$OUT/tests"
fi
echo "=== end $(date +%T)"
