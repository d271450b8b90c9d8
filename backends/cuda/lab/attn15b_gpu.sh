#!/bin/bash
# cu-attn15's second call (2026-11-27, fifteenth session): the tensor-core attention order after
# one K/V pieces buffer (2 blocks an SM for the decode tiles) and PvMerge's column-block groups:
#   1. bench_cuda_kernels --attention-tc under TESSERA_CUDA_ATTN_TC_DNB=1, 2, 4 (every bit check
#      under each; prefill times per tile kind; D = 128 timing-only diagnostics);
#   1b. bench_cuda_kernels --attention (the f32 order's checks, its default as variant 9);
#   2. ncu of the first two tensor-core prefill kernels (if the machine has ncu);
#   3. CUDA op conformance + text golden + server_scheduler_test (switch default);
#   4. greedy text md5 HEAD's plugin / TC=0 / TC=1 (0.5B, 1B; 8B 32 tokens);
#   5. engine pp2048 HEAD vs new (the DNB with the lowest summed kernel time), 3 rounds
#      interleaved, three shapes; tg128 2 rounds (8B one).
# Carry: .dev/cu-attn15/bundle.tar.gz, .dev/old15.tar.xz, this script.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-300}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
mkdir -p .dev/cu-attn15 && tar xzf .dev/cu-attn15/bundle.tar.gz -C .dev/cu-attn15
B=$PWD/.dev/cu-attn15/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/head && cp -r $B /tmp/head && mkdir -p /tmp/o15 && tar xJf .dev/old15.tar.xz -C /tmp/o15 &&
  cp /tmp/o15/libtessera_backend_cuda.so /tmp/head/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for d in 1 2 4; do
  echo "=== bench_cuda_kernels --attention-tc DNB=$d"
  TESSERA_CUDA_ATTN_TC_DNB=$d timeout 120 $B/bin/bench_cuda_kernels --attention-tc > $OUT/kernels_dnb$d.log 2>&1
  echo "rc=$?"; grep -E "FAILED|summary|memcmp_checks" $OUT/kernels_dnb$d.log | tr '\n' ' '; echo
  grep -E "^time attention_(prefill|batch)" $OUT/kernels_dnb$d.log | grep "round=1"
done
echo "=== bench_cuda_kernels --attention (the f32 order's checks, variant 9)"
timeout 120 $B/bin/bench_cuda_kernels --attention > $OUT/kernels_f32.log 2>&1
echo "rc=$?"; grep -cE "^check .* ok$" $OUT/kernels_f32.log; grep -E "FAILED|summary" $OUT/kernels_f32.log
BEST=$(for d in 1 2 4; do awk -v d=$d '/^time attention_prefill_tc T=/ && /round=1/ {split($0,a,"ms="); split(a[2],b," "); s+=b[1]} END {print s, d}' $OUT/kernels_dnb$d.log; done | sort -n | head -1 | cut -d' ' -f2)
echo "best DNB=$BEST"; export TESSERA_CUDA_ATTN_TC_DNB=$BEST
grep -E "^time attention_decode" $OUT/kernels_dnb$BEST.log | grep "round=1"
el
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$NCU" ]; then
  echo "=== ncu ($NCU)"
  timeout 100 $NCU --kernel-name regex:"tc::Kernel" --kernel-name-base demangled --launch-count 2 \
    --section SpeedOfLight --section WarpStateStats --section Occupancy --section ComputeWorkloadAnalysis \
    --section SchedulerStats $B/bin/bench_cuda_kernels --attention-tc > $OUT/ncu.log 2>&1
  echo "rc=$?"; grep -E "Kernel<|Duration|Throughput|Issue Slots|Warp Cycles Per Issued|Stall|Achieved Occupancy|No Eligible" $OUT/ncu.log | head -40
else
  echo "=== no ncu on this machine"
fi
el
echo "=== CUDA suites (switch default, DNB=$BEST)"; cuda_suites
el
echo "=== greedy text (md5 of the generated tokens)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  waitck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
  waitck $s; n=48; [ $s = llama-3.1-8b ] && n=32
  for side in head tc0 tc1; do d=$B; [ $side = head ] && d=/tmp/head
    tc=1; [ $side = tc0 ] && tc=0
    TESSERA_CUDA_ATTN_TC=$tc LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n $n --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -w < /tmp/run_${s}_$side.txt) words"
    { echo "== $s $side"; cat /tmp/run_${s}_$side.txt; echo; } >> $OUT/runs.txt
  done
done
el
ab() { local side=$1 d=$B; shift; [ $side = head ] && d=/tmp/head
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench --backend "$@" 2>&1 |
    grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  left || break
  echo "=== $s pp2048 (head new, 3 rounds)"
  for k in 1 2 3; do for side in head new; do ab $side cuda /tmp/$s -p 2048 -n 0 -r 3; done; done
  el
done
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  left || break
  echo "=== $s tg128 (head new)"
  r=3 n=2; [ $s = llama-3.1-8b ] && r=2 n=1
  for k in $(seq $n); do for side in head new; do ab $side cuda /tmp/$s -p 16 -n 128 -r $r; done; done
  el
done
echo "total $(( $(date +%s) - T0 )) s"
