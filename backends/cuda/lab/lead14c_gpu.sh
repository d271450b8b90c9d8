#!/bin/bash
# The lead's third GPU call of the fourteenth session: aggregate decode (x64, greedy) of the
# committed CUDA plugin (.dev/bundle.tar.gz) against HEAD 035ab10's (.dev/old14.tar.xz), two
# interleaved rounds of `engine bench CKPT --backend cuda -p 0 -n 64 --parallel 64 --greedy -r 2`.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-170}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
tar xzf .dev/bundle.tar.gz -C .dev
B=$PWD/.dev/bundle
rm -rf /tmp/head && cp -r $B /tmp/head && mkdir -p /tmp/o14 && tar xJf .dev/old14.tar.xz -C /tmp/o14 &&
  cp /tmp/o14/libtessera_backend_cuda.so /tmp/head/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
waitck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 200 ]; do sleep 1; i=$((i + 1)); done; }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  waitck $s; left || break
  echo "=== $s x64 greedy (head new, 2 rounds)"
  for r in 1 2; do for side in head new; do d=$B; [ $side = head ] && d=/tmp/head
    LD_LIBRARY_PATH=$d/lib timeout 120 $d/bin/engine bench --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 2 2>&1 |
      grep -E "\| tg|rror" | sed "s/^/    $side /"; done; done
  echo "  [t=$(( $(date +%s) - T0 )) s]"
done
