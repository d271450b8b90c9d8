#!/bin/bash
# cu-attn15 (2026-11-27, fifteenth session): the tensor-core attention order
# (TESSERA_CUDA_ATTN_TC, k_attention.cu namespace tc) on one GPU call:
#   1. bench_cuda_kernels --attention-tc: every tile kind bit for bit against the prefill rows
#      (dense, paged + permuted table, 1 / 3 queries, window, batch, two sequences), accuracy
#      against float64, kernel times against the f32 order;
#   2. CUDA op conformance + text golden + server_scheduler_test with the switch on (default);
#   3. greedy 48-token text md5: HEAD's plugin, new plugin TC=0, TC=1 (0.5B, 1B);
#   4. engine pp2048 (-p 2048 -n 0 -r 3) HEAD's plugin vs new (TC on), interleaved, 2 rounds,
#      three shapes; then tg128 (-p 16 -n 128) the same way.
# Carry: .dev/cu-attn15/bundle.tar.gz (bundle with bench_cuda_kernels and the test binaries),
# .dev/old15.tar.xz (HEAD's plugins), this script. Logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
mkdir -p .dev/cu-attn15 && tar xzf .dev/cu-attn15/bundle.tar.gz -C .dev/cu-attn15
B=$PWD/.dev/cu-attn15/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/head && cp -r $B /tmp/head && mkdir -p /tmp/o15 && tar xJf .dev/old15.tar.xz -C /tmp/o15 &&
  cp /tmp/o15/libtessera_backend_cuda.so /tmp/head/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
waitck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
echo "=== bench_cuda_kernels --attention-tc (switch default)"
timeout 150 $B/bin/bench_cuda_kernels --attention-tc > $OUT/kernels_tc.log 2>&1
echo "rc=$?"; grep -E "FAILED|summary|accuracy|memcmp_checks" $OUT/kernels_tc.log
grep -E "^time" $OUT/kernels_tc.log | grep "round=1"
el
echo "=== CUDA suites (switch default)"; cuda_suites
el
echo "=== greedy text (md5 of 48 generated tokens)"
for s in qwen2.5-0.5b llama-3.2-1b; do
  waitck $s
  for side in head tc0 tc1; do d=$B; [ $side = head ] && d=/tmp/head
    tc=1; [ $side = tc0 ] && tc=0
    TESSERA_CUDA_ATTN_TC=$tc LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > $OUT/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < $OUT/run_${s}_$side.txt | cut -c1-12) $(wc -w < $OUT/run_${s}_$side.txt) words"
  done
done
el
ab() { local side=$1 d=$B; shift; [ $side = head ] && d=/tmp/head
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench --backend "$@" 2>&1 |
    grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  waitck $s; left || break
  echo "=== $s pp2048 (head new, 2 rounds)"
  for k in 1 2; do for side in head new; do ab $side cuda /tmp/$s -p 2048 -n 0 -r 3; done; done
  el
done
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  left || break
  echo "=== $s tg128 (head new, 2 rounds)"
  r=3 n=2; [ $s = llama-3.1-8b ] && r=2 n=1
  for k in $(seq $n); do for side in head new; do ab $side cuda /tmp/$s -p 16 -n 128 -r $r; done; done
  el
done
echo "total $(( $(date +%s) - T0 )) s"
