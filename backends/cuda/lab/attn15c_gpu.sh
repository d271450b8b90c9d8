#!/bin/bash
# cu-attn15b (2026-11-27, fifteenth session): the tensor-core prefill tiles with the K / V pieces
# cut once a call by a pre-pass into planes (TESSERA_CUDA_ATTN_TC_PRESPLIT=1) against cutting them
# per chunk while staging (=0, HEAD's tiles), and the tiles' block order longest first over every
# kv head (TESSERA_CUDA_ATTN_TC_LPT=1) against each head's tiles in turn (=0, HEAD's), in one call:
#   1. bench_cuda_kernels --attention-tc under each PRESPLIT:LPT pair of $CONFIGS, twice in turn
#      (every memcmp check under each: the prefill rows against the decode tiles, which keep
#      cutting while staging; call 1 ran PRESPLIT 0 / 1 before LPT existed, i.e. LPT=0);
#   2. ncu of the first two presplit prefill tiles (if the machine has ncu);
#   3. CUDA op conformance + text golden + server_scheduler_test (default = presplit);
#   4. greedy text md5: old plugin / PRESPLIT=0 / =1 (0.5B, 1B 48 tokens; 8B 32);
#   5. engine pp2048 old vs new, 3 rounds interleaved, three shapes (8B: + new with PRESPLIT=1);
#      tg128 one round (SKIP_TG=1: none).
# old = build/perf's plugin of HEAD 54f42d7 (bundle/old/libtessera_backend_cuda.so).
# Both calls ran a plugin with the PRESPLIT knob (call 1: default 1, no LPT; call 2: PRESPLIT
# default 0, LPT default 1). Only LPT was delivered: PRESPLIT did not pay (.dev/cu-attn15b/
# presplit.diff keeps it); under the delivered plugin PRESPLIT=... is a no-op and the 1:1
# config repeats 0:1.
# Carry: .dev/cu-attn15b/bundle.tar.gz, this script (copied to .dev/cu-attn15b/).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
mkdir -p .dev/cu-attn15b && tar xzf .dev/cu-attn15b/bundle.tar.gz -C .dev/cu-attn15b
B=$PWD/.dev/cu-attn15b/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/head && cp -r $B /tmp/head && cp $B/old/libtessera_backend_cuda.so /tmp/head/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
CONFIGS=${CONFIGS:-"0:0 0:1 1:1"}
for cfg in $CONFIGS $CONFIGS; do
  ps=${cfg%:*} lpt=${cfg#*:}
  echo "=== bench_cuda_kernels --attention-tc PRESPLIT=$ps LPT=$lpt"
  TESSERA_CUDA_ATTN_TC_PRESPLIT=$ps TESSERA_CUDA_ATTN_TC_LPT=$lpt timeout 90 $B/bin/bench_cuda_kernels --attention-tc > /tmp/k.log 2>&1
  echo "rc=$?"; grep -E "FAILED|summary|memcmp_checks" /tmp/k.log | tr '\n' ' '; echo
  grep -cE "^check .* ok$" /tmp/k.log
  grep -E "^time attention_prefill_tc|^accuracy" /tmp/k.log
  cat /tmp/k.log >> $OUT/kernels_ps${ps}_lpt$lpt.log
done
el
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$NCU" ] && [ "${SKIP_NCU:-0}" = 0 ] && left; then
  echo "=== ncu ($NCU)"
  timeout 60 $NCU --kernel-name regex:"tc::(Kernel|SplitKv)" --kernel-name-base demangled --launch-count 4 \
    --section SpeedOfLight --section WarpStateStats --section Occupancy --section SchedulerStats \
    $B/bin/bench_cuda_kernels --attention-tc > $OUT/ncu.log 2>&1
  echo "rc=$?"; grep -E "Kernel<|SplitKv|Duration|Issue Slots|No Eligible|Registers Per|Achieved Occupancy" $OUT/ncu.log | head -40
fi
el
echo "=== CUDA suites (the defaults)"; cuda_suites
el
echo "=== greedy text (md5 of the generated tokens)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  left || break
  waitck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
  waitck $s; n=48; [ $s = llama-3.1-8b ] && n=32
  for side in head new ps1; do d=$B; [ $side = head ] && d=/tmp/head
    ps=0; [ $side = ps1 ] && ps=1
    TESSERA_CUDA_ATTN_TC_PRESPLIT=$ps LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n $n --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -w < /tmp/run_${s}_$side.txt) words"
  done
done
el
ab() { local side=$1 d=$B; shift; [ $side = head ] && d=/tmp/head
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench --backend "$@" 2>&1 |
    grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  left || break
  echo "=== $s pp2048 (old new, 3 rounds)"
  for k in 1 2 3; do for side in head new; do ab $side cuda /tmp/$s -p 2048 -n 0 -r 3; done
    [ $s = llama-3.1-8b ] && [ $k -le 2 ] &&
      TESSERA_CUDA_ATTN_TC_PRESPLIT=1 ab ps1 cuda /tmp/$s -p 2048 -n 0 -r 3; done
  el
done
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  left && [ "${SKIP_TG:-0}" = 0 ] || break
  echo "=== $s tg128 (old new)"
  r=3; [ $s = llama-3.1-8b ] && r=2
  for side in head new; do ab $side cuda /tmp/$s -p 16 -n 128 -r $r; done
  el
done
echo "total $(( $(date +%s) - T0 )) s"
