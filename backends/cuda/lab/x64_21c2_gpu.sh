#!/bin/bash
# cu21-x64b's second GPU call: the in-tile combine with eight chunk sums in flight a thread
# (call 1's loop was latency-bound: one CTA an SM). Carries .dev/bundle21.tar.xz and
# .dev/cu21-x64b/gpu2.tar (this script, the new plugin and cuda_gemm_lab, stripped, xz).
# Bits: --splitk, --smallm at M = 64 on the split-K shapes (vs the GEMV rows; times on / off),
# greedy md5 on 0.5B / 1B; engine tg64x64 TESSERA_CUDA_TMA_TILE_COMBINE=0 1 1 0 (0 = 98ca895's
# kernels, call 1).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-45}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b
G=${G:-/tmp/gpu}
tar xJf .dev/bundle21.tar.xz -C /tmp
B=/tmp/bundle
xz -dc $G/libtessera_backend_cuda.so.xz > $B/lib/tessera/backends/libtessera_backend_cuda.so
xz -dc $G/cuda_gemm_lab.xz > $B/bin/cuda_gemm_lab && chmod +x $B/bin/cuda_gemm_lab
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
export LD_LIBRARY_PATH=$B/lib
L=$B/bin/cuda_gemm_lab
echo "=== lab --splitk $(t)"
timeout 20 $L --splitk > $OUT/lab_splitk.log 2>&1; rc=$?; echo "rc=$rc"
grep -E "summary|FAILED" $OUT/lab_splitk.log | head -5; grep -c " ok" $OUT/lab_splitk.log
[ $rc = 124 ] && exit 1
for tc in 1 0; do
  echo "=== lab --smallm M=64 3 pieces, TESSERA_CUDA_TMA_TILE_COMBINE=$tc $(t)"
  TESSERA_CUDA_TMA_TILE_COMBINE=$tc TESSERA_LAB_M=64 TESSERA_LAB_TERMS=3 \
    TESSERA_LAB_SHAPES=0.5B.down,1B.q_o,1B.down,8B.q_o,8B.down timeout 30 $L --smallm \
    > /tmp/lab_smallm_tc$tc.log 2>&1; echo "rc=$?"
  { echo "##### TESSERA_CUDA_TMA_TILE_COMBINE=$tc"; cat /tmp/lab_smallm_tc$tc.log; } >> $OUT/lab_smallm.log
  grep -E "^smallm" /tmp/lab_smallm_tc$tc.log | awk '{l = $2; for (i = 3; i <= NF; ++i)
    if ($i ~ /^(default|tma128x64k|tma128x64pk)=/) l = l " " $i; print l}'
  grep -E "summary|FAILED" /tmp/lab_smallm_tc$tc.log | grep -v nochunk
done
wait_ck() { while [ ! -f /tmp/$1.done ] && left; do sleep 1; done; }
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
for s in qwen2.5-0.5b llama-3.2-1b; do wait_ck $s
  timeout 60 $B/bin/engine --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 2>/dev/null > /tmp/md_$s.txt
  echo "  $s md5 $(md5sum < /tmp/md_$s.txt | cut -c1-12) bytes $(wc -c < /tmp/md_$s.txt)"
done
x64() {  # x64 TC CKPT: tg64x64 greedy -r 1
  local o; o=$(TESSERA_CUDA_TMA_TILE_COMBINE=$1 TESSERA_BENCH_STEP_TIMES=1 timeout 60 $B/bin/engine bench \
    --backend cuda /tmp/$2 -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1)
  { echo "##### $2 TILE_COMBINE=$1"; echo "$o"; } >> $OUT/engine.log
  echo "  $2 TILE_COMBINE=$1 $(echo "$o" | grep -E '\| tg' | awk -F'|' '{print $3}' | awk '{print $1}') t/s," \
    "$(echo "$o" | grep -E 'bench steps: 64 x' | sed 's/.*forward //' | head -1)"; }
echo "=== tg64x64 greedy TILE_COMBINE 0 1 1 0 $(t)"
for s in qwen2.5-0.5b llama-3.2-1b; do for tc in 0 1 1 0; do left && x64 $tc $s; done; done | tee $OUT/ab.log
echo "total $(t)"
