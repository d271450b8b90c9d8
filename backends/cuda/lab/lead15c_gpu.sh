#!/bin/bash
# The lead's third GPU call of the fifteenth session: the tensor-core attention's shared k-step
# helpers (MmaTerms / LoadQ / ScoreStep / CutP / PvStep, a refactor meant to keep every
# instruction) in .dev/bundle.tar.gz against the plugin before it (.dev/prev15.tar.xz) and HEAD
# 0441dff's (.dev/old15.tar.xz): suites, attention bit checks, greedy md5 per side, pp2048 and
# tg128 prev / new, and pp2048 in bf16 mode (`--backend-opt cuda.matmul_precision=bf16`).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-300}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
tar xzf .dev/bundle.tar.gz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
for side in head prev; do rm -rf /tmp/$side && cp -r $B /tmp/$side && mkdir -p /tmp/x_$side; done
tar xJf .dev/old15.tar.xz -C /tmp/x_head && cp /tmp/x_head/libtessera_backend_cuda.so /tmp/head/lib/tessera/backends/
tar xJf .dev/prev15.tar.xz -C /tmp/x_prev && cp /tmp/x_prev/libtessera_backend_cuda.so /tmp/prev/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
waitck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 200 ]; do sleep 1; i=$((i + 1)); done; }
dir() { case $1 in new) echo $B ;; *) echo /tmp/$1 ;; esac; }
ab() { local side=$1 d; d=$(dir $1); shift
  LD_LIBRARY_PATH=$d/lib timeout 150 $d/bin/engine "$@" 2>&1 | grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
echo "=== CUDA suites"; cuda_suites
for m in attention-tc attention; do
  timeout 120 $B/bin/bench_cuda_kernels --$m > $OUT/kernels_$m.log 2>&1
  echo "bench_cuda_kernels --$m rc=$?"; grep -E "summary|FAIL" $OUT/kernels_$m.log | head -5
  grep -E "^accuracy" $OUT/kernels_$m.log | head -4
done
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
for s in qwen2.5-0.5b llama-3.2-1b; do
  waitck $s
  for side in head prev new; do d=$(dir $side)
    LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -w < /tmp/run_${s}_$side.txt) words"
  done
done
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  waitck $s; left || break
  echo "=== $s pp2048 + tg128 (prev new prev new), then pp2048 bf16 mode (new)"
  r=3; [ $s = llama-3.1-8b ] && r=2
  for side in prev new prev new; do
    ab $side bench --backend cuda /tmp/$s -p 2048 -n 0 -r $r; ab $side bench --backend cuda /tmp/$s -p 16 -n 128 -r $r; done
  ab new --backend-opt cuda.matmul_precision=bf16 bench --backend cuda /tmp/$s -p 2048 -n 0 -r $r
  el
done
echo "total $(( $(date +%s) - T0 )) s"
