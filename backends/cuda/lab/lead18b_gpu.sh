#!/bin/bash
# The lead's second call (eighteenth session): the small models' batch-1 decode, prev (HEAD
# 0a00b9a's plugins, .dev/old18.tar.xz) vs new (.dev/bundle18.tar.xz), interleaved with the order
# alternating, 3 rounds; then aggregate greedy decode x64, one round each. lead18_gpu.sh had one
# 0.5B round only (new 1.7% behind, inside its spread). Logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-170}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.2-1b qwen2.5-0.5b
tar xf ${BUNDLE:-.dev/bundle18.tar.xz} -C .dev
B=$PWD/.dev/bundle
rm -rf /tmp/prev && cp -r $B /tmp/prev && mkdir -p /tmp/x && tar xJf ${OLD:-.dev/old18.tar.xz} -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so /tmp/prev/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
ab() { local side=$1 d=$B; shift; [ $side = prev ] && d=/tmp/prev
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine "$@" 2>&1 | grep -E "\| (tg)|rror" | sed "s/^/    $side /"; }
for s in qwen2.5-0.5b llama-3.2-1b; do
  i=0; while [ ! -f /tmp/$s.done ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
  echo "=== $s  [t=$(( $(date +%s) - T0 )) s]"
  for order in "prev new" "new prev" "prev new"; do for side in $order; do
    left && ab $side bench --backend cuda /tmp/$s -p 16 -n 128 -r 2; done; done
done
for s in qwen2.5-0.5b llama-3.2-1b; do for side in prev new; do
  left && ab $side bench --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1; done; done
echo "total $(( $(date +%s) - T0 )) s"
