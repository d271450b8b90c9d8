#!/bin/bash
# The lead's GPU call of the fifteenth session: the committed CUDA plugin (.dev/bundle.tar.gz)
# (cu-gemm15's prefill split-K, cu-attn15's tensor-core attention order, cu-xsplit15's prefill
# split fusions) against HEAD 0441dff's (.dev/old15.tar.xz): CUDA suites, cuda_argmax_graph_test and
# cuda_backend_test, greedy text md5 per side, then interleaved head / new rounds of pp2048
# (prefill) and tg128 (batch-1 decode) on the three shapes, and x64 greedy on the 8B.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-400}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b qwen2.5-0.5b llama-3.2-1b
tar xzf .dev/bundle.tar.gz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/head && cp -r $B /tmp/head && mkdir -p /tmp/o15 && tar xJf .dev/old15.tar.xz -C /tmp/o15 &&
  cp /tmp/o15/libtessera_backend_cuda.so /tmp/head/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
waitck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 200 ]; do sleep 1; i=$((i + 1)); done; }
ab() { local side=$1 d=$B; shift; [ $side = head ] && d=/tmp/head
  LD_LIBRARY_PATH=$d/lib timeout 150 $d/bin/engine bench --backend "$@" 2>&1 |
    grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
echo "=== CUDA suites"; cuda_suites
for t in cuda_argmax_graph_test cuda_backend_test; do
  TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/$t > $OUT/$t.log 2>&1
  echo "$t rc=$?"; grep -E "^\[  (PASSED|FAILED|SKIPPED) " $OUT/$t.log
done
for m in attention-tc attention; do
  timeout 120 $B/bin/bench_cuda_kernels --$m > $OUT/kernels_$m.log 2>&1
  echo "bench_cuda_kernels --$m rc=$?"; grep -E "summary|FAIL" $OUT/kernels_$m.log | head -5
done
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
  echo "=== $s pp2048 + tg128 (head new, 2 rounds)"
  r=3; [ $s = llama-3.1-8b ] && r=2
  for k in 1 2; do for side in head new; do
    ab $side cuda /tmp/$s -p 2048 -n 0 -r $r; ab $side cuda /tmp/$s -p 16 -n 128 -r $r; done; done
  el
done
if left; then echo "=== llama-3.1-8b x64 greedy (head new)"
  for side in head new; do ab $side cuda /tmp/llama-3.1-8b -p 0 -n 64 --parallel 64 --greedy -r 2; done; fi
echo "total $(( $(date +%s) - T0 )) s"
