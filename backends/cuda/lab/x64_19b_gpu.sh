#!/bin/bash
# cu-x64-19's second GPU call (nineteenth session), from the repo root, carrying
# .dev/bundle19.tar.xz (HEAD's bundle = "old") and .dev/cu-x64-19/gpu2 (this script + the new
# CUDA plugin, stripped, xz: TESSERA_CUDA_FUSE_ADD_SMALLM on by default = "new"). Confirms call 1's
# small gain: greedy md5 per side, tg64x64 greedy old / new interleaved with the order alternating,
# 4 rounds on 0.5B and 1B, batch-1 tg128 0.5B once a side, then the CUDA suites on the new plugin.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-50}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b
tar xJf .dev/bundle19.tar.xz -C .dev
B=$PWD/.dev/bundle; O=/tmp/old; rm -rf $O && cp -r $B $O
xz -dc .dev/cu-x64-19/gpu2/libtessera_backend_cuda.so.xz > $B/lib/tessera/backends/libtessera_backend_cuda.so
P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so | cut -c1-12
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 100 ]; do sleep 1; i=$((i + 1)); done; }
eng() { local side=$1 d=$B; shift; [ $side = old ] && d=$O; LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine "$@"; }
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
for s in qwen2.5-0.5b llama-3.2-1b; do wait_ck $s; for side in old new; do
  eng $side --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 2>/dev/null > /tmp/md_${s}_$side.txt
  echo "  $s $side md5 $(md5sum < /tmp/md_${s}_$side.txt | cut -c1-12) bytes $(wc -c < /tmp/md_${s}_$side.txt)"
done; done
echo "=== tg64x64 greedy $(t)"
for order in "old new" "new old" "old new" "new old"; do for s in qwen2.5-0.5b llama-3.2-1b; do
  for side in $order; do left && eng $side bench --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/  $s $side /" | tee -a $OUT/ab.log; done; done; done
for side in old new; do eng $side bench --backend cuda /tmp/qwen2.5-0.5b -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg" |
  sed "s/^/  0.5B tg128 $side /"; done
echo "=== CUDA suites, new plugin (defaults) $(t)"
export LD_LIBRARY_PATH=$B/lib; cuda_suites
echo "total $(t)"
