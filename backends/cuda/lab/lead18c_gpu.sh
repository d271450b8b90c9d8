#!/bin/bash
# The lead's last call (eighteenth session): the final tree (cu-dec18 + cu-dec18b's one-round-trip
# RMS_NORM prologues, cu-gemm18's tile, cu-attn18 + cu-attn18b's decode attention tiles) against
# HEAD 0a00b9a's CUDA plugin (.dev/old18c.tar.xz), one call: CUDA suites, argmax graph test, the
# GEMV lab's same-bits checks, greedy 48-token md5 per side, then tg128 interleaved with the order
# alternating (0.5B, 1B, 8B). Carry .dev/bundle18.tar.xz and .dev/old18c.tar.xz. Logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-170}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
tar xf ${BUNDLE:-.dev/bundle18.tar.xz} -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/prev && cp -r $B /tmp/prev && mkdir -p /tmp/x && tar xJf ${OLD:-.dev/old18c.tar.xz} -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so /tmp/prev/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
echo "=== CUDA suites"; cuda_suites
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 90 $B/bin/cuda_argmax_graph_test --gtest_brief=1 > $OUT/argmax.log 2>&1
echo "cuda_argmax_graph_test rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/argmax.log | tr '\n' ' ')"
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 150 $B/bin/cuda_gemv_lab --quick > $OUT/gemv_lab.log 2>&1
echo "cuda_gemv_lab rc=$? $(grep -E 'checks failures' $OUT/gemv_lab.log | tail -1) same-bits lines: $(grep -ci 'same bits' $OUT/gemv_lab.log)"
echo "  [t=$(( $(date +%s) - T0 )) s]"
ab() { local side=$1 d=$B; shift; [ $side = prev ] && d=/tmp/prev
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine "$@" 2>&1 | grep -E "\| (tg)|rror" | sed "s/^/    $side /"; }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  i=0; while [ ! -f /tmp/$s.done ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
  for side in prev new; do d=$B; [ $side = prev ] && d=/tmp/prev
    LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side cuda md5 $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12)"; done
  echo "=== $s  [t=$(( $(date +%s) - T0 )) s]"
  for order in "prev new" "new prev" "prev new"; do for side in $order; do
    left && ab $side bench --backend cuda /tmp/$s -p 16 -n 128 -r 2; done; done
done
echo "total $(( $(date +%s) - T0 )) s"
