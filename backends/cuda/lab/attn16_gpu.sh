#!/bin/bash
# cu-attn16 (2026-11-27, sixteenth session): the tensor-core prefill tiles with warp-uniform
# paths (variants 11 / 12, the defaults: Softmax without the masks and the chunk merge without
# MergeAcc's selects where every row of a warp sees the whole chunk) against HEAD fee64b5's tiles
# (variants 19 / 20 of the same binary), one call:
#   1. bench_cuda_kernels --attention-tc T under each KNOBS@T of $KCONF (every memcmp check: the
#      new tiles against HEAD's over every row, dense and paged, window, two sequences, and the
#      decode tiles against the prefill rows; kernel times of every tile kind, interleaved);
#   2. ncu of the first 128-row tile (D = 128) under each NCU_KNOBS entry, unless SKIP_NCU=1;
#   MODE=full also:
#   3. bench_cuda_kernels --attention (the f32 order's checks, then --attention-tc again);
#   4. CUDA op conformance + text golden + server_scheduler_test;
#   5. greedy text md5: old plugin / new (0.5B, 1B 48 tokens; 8B 32);
#   6. engine pp2048 old vs new, $ROUNDS rounds interleaved, three shapes.
# old = HEAD fee64b5's plugin (.dev/old16.tar.xz); new = .dev/cu-attn16/bundle.tar.gz.
# Calls 1 and 2 ran earlier builds (results/attn16/*_plugin.diff): call 1 the 2-warp tiles, call
# 2 also the p.V / uniform variants under TESSERA_CUDA_ATTN_TC_PV (KCONF "-@2048 PV=1@2048 ...").
# Carry: .dev/cu-attn16/bundle.tar.gz, this script (copied to .dev/cu-attn16/), .dev/old16.tar.xz.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}; MODE=${MODE:-kern}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
[ $MODE = full ] && make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
mkdir -p .dev/cu-attn16 && tar xzf .dev/cu-attn16/bundle.tar.gz -C .dev/cu-attn16
B=$PWD/.dev/cu-attn16/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
if [ $MODE = full ]; then
  mkdir -p /tmp/old && tar xJf .dev/old16.tar.xz -C /tmp/old
  OLDSO=$(find /tmp/old -name libtessera_backend_cuda.so | head -1)
  rm -rf /tmp/head && cp -r $B /tmp/head && cp $OLDSO /tmp/head/lib/tessera/backends/
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
# KCONF: entries KNOBS@T: comma-separated TESSERA_CUDA_ATTN_TC_ knobs (DNB=1,LPT=0; "-" = none) and
# the bench's T.
for cfg in ${KCONF:--@2048 -@512 -@2048}; do
  knobs=${cfg%@*} t=${cfg#*@} envs=""
  [ "$knobs" = "-" ] || for kv in ${knobs//,/ }; do envs="$envs TESSERA_CUDA_ATTN_TC_$kv"; done
  left || break
  echo "=== bench_cuda_kernels --attention-tc $t,$envs"
  env $envs timeout 120 $B/bin/bench_cuda_kernels --attention-tc $t > /tmp/k.log 2>&1
  echo "rc=$?"; grep -E "FAILED|summary|memcmp_checks" /tmp/k.log | tr '\n' ' '; echo
  echo "checks ok: $(grep -cE '^check .* ok$' /tmp/k.log)"
  grep -E "^time attention_prefill_tc|^accuracy" /tmp/k.log | grep -v diag
  echo "### $envs T=$t" >> $OUT/kernels.log; cat /tmp/k.log >> $OUT/kernels.log
  el
done
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$NCU" ] && [ "${SKIP_NCU:-0}" = 0 ]; then
  # The first tc::Kernel launch of the bench (the 128-row tile, D = 128) under each NCU_KNOBS entry.
  for knobs in ${NCU_KNOBS:--}; do
    left || break
    envs=""; [ "$knobs" = "-" ] || for kv in ${knobs//,/ }; do envs="$envs TESSERA_CUDA_ATTN_TC_$kv"; done
    echo "=== ncu ($NCU),$envs: the first 128-row tile (D = 128)"
    env $envs timeout 60 $NCU --kernel-name regex:"tc::Kernel" --kernel-name-base demangled --launch-count 1 \
      --section SpeedOfLight --section WarpStateStats --section Occupancy --section SchedulerStats \
      --section LaunchStats --section InstructionStats --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio \
      $B/bin/bench_cuda_kernels --attention-tc > /tmp/ncu.log 2>&1
    echo "rc=$?"; grep -E "tc::Kernel<|Duration|No Eligible|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|Executed Instructions  " /tmp/ncu.log | head -12
    grep -E "issue_stalled" /tmp/ncu.log | sort -k3 -g -r | head -8
    echo "### $envs" >> $OUT/ncu.log; cat /tmp/ncu.log >> $OUT/ncu.log
    el
  done
fi
[ $MODE = full ] || { echo "total $(( $(date +%s) - T0 )) s"; exit 0; }

echo "=== bench_cuda_kernels --attention"
timeout 150 $B/bin/bench_cuda_kernels --attention > $OUT/attention.log 2>&1
echo "rc=$?"; grep -E "FAILED|summary" $OUT/attention.log | tr '\n' ' '; echo
echo "checks ok: $(grep -cE '^check .* ok$' $OUT/attention.log)"
el
echo "=== CUDA suites (the defaults)"; cuda_suites
el
echo "=== greedy text (md5 of the generated tokens)"
waitck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  left || break
  waitck $s; n=48; [ $s = llama-3.1-8b ] && n=32
  for side in head new; do d=$B; [ $side = head ] && d=/tmp/head
    LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n $n --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -w < /tmp/run_${s}_$side.txt) words"
  done
done
el
ab() { local side=$1 d=$B; shift; [ $side = head ] && d=/tmp/head
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench --backend "$@" 2>&1 |
    grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  left || break
  echo "=== $s pp2048 (old new, ${ROUNDS:-3} rounds)"
  for k in $(seq ${ROUNDS:-3}); do for side in head new; do ab $side cuda /tmp/$s -p 2048 -n 0 -r 3; done; done
  el
done
echo "total $(( $(date +%s) - T0 )) s"
