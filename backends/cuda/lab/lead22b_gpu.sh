#!/bin/bash
# The lead's second final call (twenty-second session): more interleaved rounds where call 1
# (lead22_gpu.sh) was within its spread. Same carry as lead22_gpu.sh (no suites, no lab):
#   1. tg64x64 greedy old new new old, twice, on 0.5B and 1B; tg128 old new new old on 0.5B / 1B
#   2. knob pairs on the new plugin (tg128 -r 2, off on on off): 8B TESSERA_CUDA_GEMV_O2=0,
#      1B TESSERA_CUDA_GEMV_XP1W=0; 1B tg64x64 TESSERA_CUDA_ATTN_TC_BATCH=0
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do [ -f /tmp/$s.done ] || make_checkpoints $s; done
tar xJf ${BUNDLE:-.dev/bundle22f.tar.xz} -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib
O=/tmp/old; rm -rf $O && cp -r $B $O && mkdir -p /tmp/x && tar xJf ${OLD:-.dev/old22.tar.xz} -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so $O/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 200 ]; do sleep 1; i=$((i + 1)); done; }
eng() { local d=$B; [ $1 = old ] && d=$O; shift; LD_LIBRARY_PATH=$d/lib timeout 120 $d/bin/engine "$@"; }
for s in qwen2.5-0.5b llama-3.2-1b; do
  wait_ck $s; echo "=== $s $(t)"
  for side in old new new old old new new old; do
    left && eng $side bench --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1 |
      grep -E "\| tg|rror" | sed "s/^/  $side x64 /"
  done
  for side in old new new old; do
    left && eng $side bench --backend cuda /tmp/$s -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | sed "s/^/  $side /"
  done
done
echo "=== knob pairs (new plugin) $(t)"
wait_ck llama-3.1-8b
for k in "TESSERA_CUDA_GEMV_O2=0 llama-3.1-8b" "X_NONE=1 llama-3.1-8b" "X_NONE=1 llama-3.1-8b" "TESSERA_CUDA_GEMV_O2=0 llama-3.1-8b" \
         "TESSERA_CUDA_GEMV_XP1W=0 llama-3.2-1b" "X_NONE=1 llama-3.2-1b" "X_NONE=1 llama-3.2-1b" "TESSERA_CUDA_GEMV_XP1W=0 llama-3.2-1b"; do
  set -- $k
  left && env $1 LD_LIBRARY_PATH=$B/lib timeout 120 $B/bin/engine bench --backend cuda /tmp/$2 -p 16 -n 128 -r 2 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/  $2 $1 /"
done
for k in TESSERA_CUDA_ATTN_TC_BATCH=0 X_NONE=1 X_NONE=1 TESSERA_CUDA_ATTN_TC_BATCH=0; do
  left && env $k LD_LIBRARY_PATH=$B/lib timeout 120 $B/bin/engine bench --backend cuda /tmp/llama-3.2-1b -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/  1b x64 $k /"
done
echo "total $(t)"
