#!/bin/bash
# One GPU-machine call for the decode attention split + GEMV x pre-split (issue 5, cuda-dec2),
# from the repo root against a relocatable bundle (default .dev/bundle-cuda-dec2 with
# bench_cuda_kernels, cuda_gemv_lab and the test binaries in bin/). Steps (each skippable):
#   1. ATTN=1: bench_cuda_kernels --attention (decode split vs nosplit vs legacy us, bit checks);
#   2. LAB=1: cuda_gemv_lab --quick with TESSERA_CUDA_GEMV_XP=1 (pre-split wherever it fits:
#      every bit check runs it) and =0 (the per-row-group split), for the timing tables;
#   3. TESTS=1: CUDA op conformance, text golden, server scheduler (TESTS_XP: the
#      TESSERA_CUDA_GEMV_XP they run with, default 1; -1 = the shipped rule);
#   4. ENGINE=1: engine tg128 per shape with the defaults, with both new paths off (attention
#      TESSERA_CUDA_ATTN=nosplit, GEMV TESSERA_CUDA_GEMV_XP=0) and each off alone, then
#      (PROFILE=1) the per-op profile (graphs off) of a decode step, split vs nosplit.
# Logs in $OUT (dec2_*.log).
B=${TESSERA_BUNDLE:-.dev/bundle-cuda-dec2}
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
if [ "${ATTN:-1}" = 1 ]; then
  echo "=== bench_cuda_kernels --attention"
  timeout 90 "$B/bin/bench_cuda_kernels" --attention > "$OUT/dec2_attn_bench.log" 2>&1
  echo "rc=$?"
  grep -E "attention_decode|FAIL|fail|bits|invariance|summary" "$OUT/dec2_attn_bench.log" | head -40
fi
if [ "${LAB:-1}" = 1 ]; then
  for xp in 1 0; do
    echo "=== gemv lab --quick XP=$xp"
    TESSERA_CUDA_GEMV_XP=$xp timeout 100 "$B/bin/cuda_gemv_lab" --quick > "$OUT/dec2_lab_xp$xp.log" 2>&1
    echo "lab rc=$?"
    grep -E "FAILED|DIFFERENT|failures|^copy" "$OUT/dec2_lab_xp$xp.log" | head
    echo "same bits lines: $(grep -c 'same bits' "$OUT/dec2_lab_xp$xp.log")"
    grep -E "^group 8B|^prologue 8B" "$OUT/dec2_lab_xp$xp.log"
    sed -n '/^shape /,$p' "$OUT/dec2_lab_xp$xp.log" | head -8
  done
fi
if [ "${TESTS:-1}" = 1 ]; then
  TESSERA_CUDA_GEMV_XP=${TESTS_XP:-1} OUT=$OUT/tests TESSERA_BUNDLE=$B LAB=0 TESTS=1 SCHED=1 \
    bash backends/cuda/lab/gpu_lab.sh 2>&1 | grep -v "^NVIDIA"
  for f in conformance golden scheduler; do cp "$OUT/tests/$f.log" "$OUT/dec2_$f.log"; done
  rm -rf "$OUT/tests"
fi
. backends/cuda/lab/lab_common.sh  # bench NAME DIR ENV...
if [ "${ENGINE:-1}" = 1 ]; then
  for shape in ${SHAPES:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}; do
    echo "=== $shape"
    timeout 150 python3 bench/make_checkpoint.py --shape "$shape" --out "/tmp/ck_$shape" 2>&1 | tail -1
    {
      bench "$shape defaults" "/tmp/ck_$shape" TESSERA_X=1
      bench "$shape both off" "/tmp/ck_$shape" TESSERA_CUDA_ATTN=nosplit TESSERA_CUDA_GEMV_XP=0
      bench "$shape attn nosplit only" "/tmp/ck_$shape" TESSERA_CUDA_ATTN=nosplit
      bench "$shape gemv xp off only" "/tmp/ck_$shape" TESSERA_CUDA_GEMV_XP=0
      if [ "${PROFILE:-1}" = 1 ]; then
        for v in split nosplit; do
          TESSERA_CUDA_ATTN=$v TESSERA_CUDA_PROFILE=1 timeout 120 "$B/bin/engine" bench \
            --backend cuda "/tmp/ck_$shape" -p 16 -n 128 -r 1 > "$OUT/dec2_profile_${shape}_$v.log" 2>&1
          echo "--- profile $v (decode ops, us a call)"
          grep -E "\[decode\]" "$OUT/dec2_profile_${shape}_$v.log" | head -9
        done
      fi
    } 2>&1 | tee -a "$OUT/dec2_engine.log"
    rm -rf "/tmp/ck_$shape"
  done
fi
