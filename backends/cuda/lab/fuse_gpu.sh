#!/bin/bash
# One GPU-machine call for the decode fusions (RMS_NORM / SWIGLU folded into the GEMV, ROPE +
# KV_WRITE in one launch), from the repo root against a relocatable bundle (default
# .dev/bundle-cuda-fuse with cuda_gemv_lab and the test binaries in bin/):
#   1. the GEMV lab's bit checks (fused == op kernel + GEMV, fused GEMV == GEMM rows) and the
#      prologue timings (GEMV_LAB_PROLOGUE_ONLY: no full sweep);
#   2. CUDA op conformance, text golden, server scheduler batch invariance (gpu_lab.sh);
#   3. engine tg128 per shape with the defaults (RMS_NORM fusion on; SWIGLU and ROPE+KV off) and
#      with every new fusion off (FUSE_OFF below), and on the 0.5B each knob flipped alone.
# (Runs 1-3 of 2026-11-26 had SWIGLU and ROPE+KV on by default: "fusions on" = all three.)
# Logs in $OUT (fuse_*.log).
B=${TESSERA_BUNDLE:-.dev/bundle-cuda-fuse}
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
FUSE_OFF="TESSERA_CUDA_FUSE_NORM=0 TESSERA_CUDA_FUSE_SWIGLU=0 TESSERA_CUDA_FUSE_ROPEKV=0"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
if [ "${LAB:-1}" != 0 ]; then
  echo "=== gemv lab (checks + prologue timings)"
  GEMV_LAB_PROLOGUE_ONLY=1 timeout "${LAB_TIMEOUT:-150}" "$B/bin/cuda_gemv_lab" > "$OUT/fuse_lab.log" 2>&1
  echo "lab rc=$?"
  grep -E "FAILED|failures|DIFFERENT|^copy|^prologue" "$OUT/fuse_lab.log" | head -40
  grep -c "same bits" "$OUT/fuse_lab.log"
fi
if [ "${TESTS:-1}" != 0 ]; then
  OUT=$OUT/tests TESSERA_BUNDLE=$B LAB=0 TESTS=1 SCHED=1 bash backends/cuda/lab/gpu_lab.sh
  for f in conformance golden scheduler; do cp "$OUT/tests/$f.log" "$OUT/fuse_$f.log"; done
fi
bench() {  # NAME DIR ENV...
  local name=$1 dir=$2
  shift 2
  echo "--- $name: $*"
  env "$@" timeout 200 "$B/bin/engine" bench --backend cuda "$dir" -p 16 -n 128 -r 3 2>&1 |
    grep -vE "^\s*$" | tail -4
}
for shape in ${SHAPES:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}; do
  echo "=== $shape"
  timeout 150 python3 bench/make_checkpoint.py --shape "$shape" --out "/tmp/ck_$shape" 2>&1 | tail -1
  {
    bench "$shape defaults" "/tmp/ck_$shape" TESSERA_X=1
    bench "$shape new fusions off" "/tmp/ck_$shape" $FUSE_OFF
    if [ "$shape" = qwen2.5-0.5b ]; then
      bench "$shape norm off" "/tmp/ck_$shape" TESSERA_CUDA_FUSE_NORM=0
      bench "$shape swiglu on (default off)" "/tmp/ck_$shape" TESSERA_CUDA_FUSE_SWIGLU=1
      bench "$shape rope+kv on (default off)" "/tmp/ck_$shape" TESSERA_CUDA_FUSE_ROPEKV=1
      bench "$shape defaults (again)" "/tmp/ck_$shape" TESSERA_X=1
      if [ "${PROFILE:-1}" != 0 ]; then  # per-op GPU time of a decode step (graphs off)
        for v in on off; do
          envs=TESSERA_X=1
          [ $v = off ] && envs=$FUSE_OFF
          env $envs TESSERA_CUDA_PROFILE=1 timeout 120 "$B/bin/engine" bench --backend cuda \
            "/tmp/ck_$shape" -p 16 -n 64 -r 1 > "$OUT/fuse_profile_$v.log" 2>&1
          echo "--- profile, new fusions $v (us per call, decode rows)"
          grep -iE "decode" "$OUT/fuse_profile_$v.log" | head -24
        done
      fi
    fi
  } 2>&1 | tee -a "$OUT/fuse_engine.log"
  rm -rf "/tmp/ck_$shape"
done
