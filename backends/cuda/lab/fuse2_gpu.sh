#!/bin/bash
# One GPU-machine call for the second decode-fusion pass (issue 5, cuda-fuse): SWIGLU in the
# gate/up GEMV epilogue (TESSERA_CUDA_FUSE_SWIGLU_EPI). The runs of lab/NOTES.md "Decode fusions,
# second pass" also had ROPE x2 + KV_WRITE x2 in the decode attention (TESSERA_CUDA_FUSE_ATTN_ROPE,
# since removed: lab/results/fuse2_attn_rope_unverified.patch); its configs now equal off / swiglu.
# From the repo root against a relocatable bundle
# (default .dev/bundle-cuda-fuse, or packed as .dev/bundle-cuda-fuse.tar.gz). Steps (each
# skippable):
#   1. LAB=1: cuda_gemv_lab with GEMV_LAB_SWIGLU_ONLY (every bit check, then only the
#      swiglu-epilogue timings);
#   2. TESTS=1: CUDA op conformance, text golden, server scheduler with the knob(s) on;
#   3. ENGINE=1: engine tg128 per shape in $SHAPES for each config in $CONFIGS (off, swiglu, attn,
#      both), one call = one machine, so the A/B compares like with like; PROFILE=1 adds a
#      per-op profile with TESSERA_CUDA_FUSE_DEBUG=1 (which fusions fired, why others did not).
# Logs in $OUT (fuse2_*.log).
B=${TESSERA_BUNDLE:-.dev/bundle-cuda-fuse}
if [ -z "${TESSERA_BUNDLE:-}" ] && [ -f .dev/bundle-cuda-fuse.tar.gz ]; then
  rm -rf "$B" && tar -C .dev -xzf .dev/bundle-cuda-fuse.tar.gz  # never a stale copy
fi
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
if [ "${LAB:-1}" = 1 ]; then
  echo "=== gemv lab (checks + fusion timings) $(date +%T)"
  GEMV_LAB_SWIGLU_ONLY=1 timeout "${LAB_TIMEOUT:-120}" "$B/bin/cuda_gemv_lab" \
    > "$OUT/fuse2_lab.log" 2>&1
  echo "lab rc=$?"
  grep -E "FAILED|DIFFERENT|failures" "$OUT/fuse2_lab.log" | head
  echo "same bits lines: $(grep -c 'same bits' "$OUT/fuse2_lab.log")" \
    "(swiglu_epi $(grep -c 'swiglu_epi.*same bits' "$OUT/fuse2_lab.log")," \
    "attn_rope $(grep -c 'attn_rope.*same bits' "$OUT/fuse2_lab.log"))"
  grep -E "^swiglu_epi|^attn_rope" "$OUT/fuse2_lab.log"
fi
if [ "${TESTS:-1}" = 1 ]; then
  echo "=== tests, both knobs on $(date +%T)"
  TESSERA_CUDA_FUSE_SWIGLU_EPI=1 TESSERA_CUDA_FUSE_ATTN_ROPE=1 OUT=$OUT/tests \
    TESSERA_BUNDLE=$B LAB=0 TESTS=1 SCHED=1 bash backends/cuda/lab/gpu_lab.sh 2>&1 |
    grep -v "^NVIDIA"
  for f in conformance golden scheduler; do cp "$OUT/tests/$f.log" "$OUT/fuse2_$f.log"; done
  rm -rf "$OUT/tests"
fi
. backends/cuda/lab/lab_common.sh  # bench NAME DIR ENV...
if [ "${ENGINE:-1}" = 1 ]; then
  for shape in ${SHAPES:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}; do
    echo "=== $shape $(date +%T)"
    timeout 150 python3 bench/make_checkpoint.py --shape "$shape" --out "/tmp/ck_$shape" 2>&1 | tail -1
    for c in ${CONFIGS:-off both off both off both}; do
      case $c in
        off) env=(TESSERA_CUDA_FUSE_SWIGLU_EPI=0 TESSERA_CUDA_FUSE_ATTN_ROPE=0) ;;
        swiglu) env=(TESSERA_CUDA_FUSE_SWIGLU_EPI=1 TESSERA_CUDA_FUSE_ATTN_ROPE=0) ;;
        attn) env=(TESSERA_CUDA_FUSE_SWIGLU_EPI=0 TESSERA_CUDA_FUSE_ATTN_ROPE=1) ;;
        both) env=(TESSERA_CUDA_FUSE_SWIGLU_EPI=1 TESSERA_CUDA_FUSE_ATTN_ROPE=1) ;;
        default) env=(TESSERA_X=1) ;;
      esac
      bench "$shape $c" "/tmp/ck_$shape" "${env[@]}"
    done 2>&1 | tee -a "$OUT/fuse2_engine.log"
    if [ "${PROFILE:-0}" = 1 ]; then  # which fused launches fired, per-op times (graphs off)
      TESSERA_CUDA_FUSE_SWIGLU_EPI=1 TESSERA_CUDA_FUSE_ATTN_ROPE=1 TESSERA_CUDA_PROFILE=1 \
        TESSERA_CUDA_FUSE_DEBUG=1 timeout 60 "$B/bin/engine" bench --backend cuda \
        "/tmp/ck_$shape" -p 16 -n 16 -r 1 > "$OUT/fuse2_profile_$shape.log" 2>&1
      grep -E "refused|decode" "$OUT/fuse2_profile_$shape.log" | head -16
    fi
    rm -rf "/tmp/ck_$shape"
  done
fi
echo "=== end $(date +%T)"
