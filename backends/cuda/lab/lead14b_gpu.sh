#!/bin/bash
# The lead's second GPU call of the fourteenth session: the committed CUDA plugin (cu-dec14's graph
# key fast path and held uploads; HEAD's attention) from .dev/bundle.tar.gz, against HEAD 035ab10's
# plugin (.dev/old14.tar.xz): CUDA suites, cuda_argmax_graph_test (graph replays that follow view
# and buffer changes), greedy text md5 per side, tg128 interleaved (2 rounds) on the three shapes.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b
make_checkpoints qwen2.5-0.5b llama-3.2-1b
tar xzf .dev/bundle.tar.gz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/head && cp -r $B /tmp/head && mkdir -p /tmp/o14 && tar xJf .dev/old14.tar.xz -C /tmp/o14 &&
  cp /tmp/o14/libtessera_backend_cuda.so /tmp/head/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
waitck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
ab() { local side=$1 d=$B; shift; [ $side = head ] && d=/tmp/head
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench --backend "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
echo "=== CUDA suites"; cuda_suites
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test > $OUT/argmax.log 2>&1
echo "argmax_graph rc=$?"; grep -E "^\[  (PASSED|FAILED|SKIPPED) " $OUT/argmax.log
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_backend_test > $OUT/backend.log 2>&1
echo "cuda_backend_test rc=$?"; grep -E "^\[  (PASSED|FAILED) " $OUT/backend.log
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
for s in qwen2.5-0.5b llama-3.2-1b; do
  waitck $s
  for side in head new; do d=$B; [ $side = head ] && d=/tmp/head
    LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -w < /tmp/run_${s}_$side.txt) words"
  done
done
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  waitck $s; left || break
  echo "=== $s tg128 (head new, 2 rounds)"
  r=3; [ $s = llama-3.1-8b ] && r=2
  for k in 1 2; do for side in head new; do ab $side cuda /tmp/$s -p 16 -n 128 -r $r; done; done
  el
done
echo "total $(( $(date +%s) - T0 )) s"
