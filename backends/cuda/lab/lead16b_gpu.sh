#!/bin/bash
# The lead's second GPU call of the sixteenth session: cuda_argmax_graph_test / cuda_backend_test
# (the first call set the wrong variable for them), bench/cuda_compare.py (transformers eager beside
# the engine, same card and checkpoints, with the roofline) for the new plugin, engine pp2048 in bf16
# mode, then tg128 on the small shapes again, new first, against HEAD fee64b5's plugin
# (.dev/old16c.tar.xz): the first call's first round read prev 1-4% higher there, its second level.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s)
tar xf ${BUNDLE:-.dev/bundle16.tar.xz} -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/prev && cp -r $B /tmp/prev && mkdir -p /tmp/x && tar xJf ${OLD:-.dev/old16c.tar.xz} -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so /tmp/prev/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for t in cuda_argmax_graph_test cuda_backend_test; do
  TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 90 $B/bin/$t --gtest_brief=1 > $OUT/$t.log 2>&1
  echo "$t rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/$t.log | tr '\n' ' ')"
done
timeout 420 python3 bench/cuda_compare.py --engine $B/bin/engine --out $OUT --skip-compile --reps 2 \
  --keep --tmp /tmp/cc 2>&1 | tail -40
echo "  [t=$(( $(date +%s) - T0 )) s]"
ab() { local side=$1 d=$B; shift; [ $side = prev ] && d=/tmp/prev
  LD_LIBRARY_PATH=$d/lib timeout 150 $d/bin/engine "$@" 2>&1 | grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  d=$(ls -d /tmp/cc/*$s* 2>/dev/null | head -1); [ -n "$d" ] || continue
  echo "=== $s pp2048 bf16 mode"
  ab new --backend-opt cuda.matmul_precision=bf16 bench --backend cuda $d -p 2048 -n 0 -r 2
  [ $s = llama-3.1-8b ] && continue
  echo "=== $s tg128, new first"
  for r in 1 2; do for side in new prev; do ab $side bench --backend cuda $d -p 16 -n 128 -r 2; done; done
done
echo "total $(( $(date +%s) - T0 )) s"
