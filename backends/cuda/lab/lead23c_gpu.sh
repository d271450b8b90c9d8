#!/bin/bash
# The lead's third H200 call (twenty-third session): do cu23-b8's whole-line weight loads pay on the
# small models too? HEAD 123e2c8's CUDA plugin (.dev/new23.tar.xz) in bundle23, the 0.5B and 1B
# batch-1 decode with TESSERA_CUDA_GEMV_LINES=32 (the default rule: no 0.5B / 1B launch takes it)
# against =31 (mask 16: every launch kind at every M and K, the lab's check mode, whose bits
# cuda_gemv_lab --quick proved in lead23b): greedy md5 each, tg128 interleaved a b b a a b.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-90}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b
rm -rf /tmp/bundle /tmp/new23 && tar xJf .dev/bundle23.tar.xz -C /tmp && tar xJf .dev/new23.tar.xz -C /tmp
N=/tmp/bundle; cp /tmp/new23/libtessera_backend_cuda.so $N/lib/tessera/backends/
export LD_LIBRARY_PATH=$N/lib
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 90 ]; do sleep 1; i=$((i + 1)); done; }
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
for s in qwen2.5-0.5b llama-3.2-1b; do
  wait_ck $s; echo "=== $s $(t)"
  for m in 32 31; do
    TESSERA_CUDA_GEMV_LINES=$m timeout 60 $N/bin/engine --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 2> /dev/null > /tmp/md_$m.txt
    echo "  LINES=$m md5 $(md5sum < /tmp/md_$m.txt | cut -c1-12)"
  done
  for m in 32 31 31 32 32 31; do
    left && TESSERA_CUDA_GEMV_LINES=$m timeout 60 $N/bin/engine bench --backend cuda /tmp/$s -p 16 -n 128 -r 2 2>&1 |
      grep -E "\| tg|rror" | sed "s/^/  LINES=$m /"
  done
done
echo "total $(t)"
