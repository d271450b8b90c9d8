#!/bin/bash
# The lead's second GPU call of the fifteenth session: bench/cuda_compare.py (transformers eager
# beside the engine on the same card and checkpoints, with the roofline) for the committed CUDA
# plugin (.dev/bundle.tar.gz), then engine pp2048 in bf16 mode
# (`--backend-opt cuda.matmul_precision=bf16`) on the kept checkpoints (the first call had the option
# after `bench`, where the CLI does not take it: no bf16-mode rows in its log).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s)
tar xzf .dev/bundle.tar.gz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
timeout 420 python3 bench/cuda_compare.py --engine $B/bin/engine --out $OUT --skip-compile --reps 2 \
  --keep --tmp /tmp/cc 2>&1 | tail -40
echo "  [t=$(( $(date +%s) - T0 )) s]"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  d=$(ls -d /tmp/cc/*$s* 2>/dev/null | head -1); [ -n "$d" ] || continue
  echo "=== $s pp2048 bf16 mode"
  timeout 90 $B/bin/engine --backend-opt cuda.matmul_precision=bf16 bench --backend cuda $d -p 2048 -n 0 -r 2 2>&1 |
    grep -E "\| pp|rror"
done
echo "total $(( $(date +%s) - T0 )) s"
