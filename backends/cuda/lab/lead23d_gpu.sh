#!/bin/bash
# The lead's last H200 call (twenty-third session): the final tree's CUDA plugin (.dev/fin23.tar.xz,
# build/perf at 696c117: whole-line loads on by the card rule without any knob set) in bundle23:
# CUDA suites, 8B greedy md5, 8B tg128 default vs TESSERA_CUDA_GEMV_LINES=0 (a b b a).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s)
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b
rm -rf /tmp/bundle /tmp/fin23 && tar xJf .dev/bundle23.tar.xz -C /tmp && tar xJf .dev/fin23.tar.xz -C /tmp
B=/tmp/bundle; P=$B/lib/tessera/backends; cp /tmp/fin23/libtessera_backend_cuda.so $P/
export LD_LIBRARY_PATH=$B/lib
cuda_suites
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 90 ]; do sleep 1; i=$((i + 1)); done; }
wait_ck llama-3.1-8b; echo "=== 8B $(t)"
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
timeout 60 $B/bin/engine --backend cuda run /tmp/llama-3.1-8b "$PR" --raw -n 48 --temperature 0 2> /dev/null | md5sum | cut -c1-12
for e in X_NONE=1 TESSERA_CUDA_GEMV_LINES=0 TESSERA_CUDA_GEMV_LINES=0 X_NONE=1; do
  env $e timeout 60 $B/bin/engine bench --backend cuda /tmp/llama-3.1-8b -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | sed "s/^/  $e /"
done
echo "total $(t)"
