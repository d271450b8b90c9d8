#!/bin/bash
# Aggregate decode (cuda-agg, one call): block 0's prefix total in the TMA split-K tile
# (TESSERA_CUDA_TMA_SPLIT_PREFIX=0: every chunk sum stored, before) and the step's logits
# downloaded into page-locked memory the engine owns (plugin ABI 1.2 host_alloc;
# TESSERA_PINNED_LOGITS=0: ordinary memory, before). Lab --smallm-quick off / on (every kernel
# bit-compared with the GEMV rows), the lab's full checks, CUDA conformance / golden / scheduler,
# then engine `bench -p 0 -n 64 -r 1 --parallel 64|16` on 8B, 1B, 0.5B for three settings: base
# (both off), prefix only, both (default); TESSERA_BENCH_STEP_TIMES=1 for the step split and
# TESSERA_CUDA_PROFILE=exec runs of 8B x 64 (GPU time per execute vs the download's copy).
# Run 1 (results/agg_h100_run1_*) measured a combine fused into the tile's last CTA instead
# (TESSERA_CUDA_TMA_FUSED_COMBINE, since removed: slower).
B=.dev/bundle-cuda-agg
[ -f .dev/bundle-cuda-agg.tar.gz ] && tar -xzf .dev/bundle-cuda-agg.tar.gz -C .dev
export LD_LIBRARY_PATH=$PWD/$B/lib
P=$PWD/$B/lib/tessera/backends
E=$PWD/$B/bin/engine
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
if [ "$1" = ops ]; then
  # `agg_gpu.sh ops` (run 3): the per-op profile (TESSERA_CUDA_PROFILE=1) of an 8B and a 1B x 64
  # step, to size the unfused M > 8 decode ops (RMS_NORM, ROPE, KV_WRITE, SWIGLU, ADD).
  for s in llama-3.1-8b llama-3.2-1b; do
    python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1
    TESSERA_CUDA_PROFILE=1 timeout 60 "$E" bench --backend cuda /tmp/$s -p 0 -n 16 -r 1 --parallel 64 > "$OUT/ops_$s.log" 2>&1
    grep -E "cuda profile" "$OUT/ops_$s.log" | head -40
  done
  exit 0
fi
. backends/cuda/lab/lab_common.sh  # make_checkpoints, cuda_suites, bench_steps
make_checkpoints llama-3.1-8b llama-3.2-1b qwen2.5-0.5b
TESSERA_CUDA_TMA_SPLIT_PREFIX=0 timeout 60 $B/bin/cuda_gemm_lab --smallm-quick > "$OUT/lab_smallm_off.log" 2>&1; echo "lab smallm off rc=$?"
timeout 60 $B/bin/cuda_gemm_lab --smallm-quick > "$OUT/lab_smallm_on.log" 2>&1; echo "lab smallm on rc=$?"
timeout 90 $B/bin/cuda_gemm_lab --default-only > "$OUT/lab_checks.log" 2>&1; echo "lab checks rc=$?"
grep -c "(BITS)" "$OUT"/lab_*.log; grep -hE "FAILED|summary" "$OUT"/lab_*.log | head
cuda_suites
BASE="TESSERA_CUDA_TMA_SPLIT_PREFIX=0 TESSERA_PINNED_LOGITS=0"
PREFIX="TESSERA_PINNED_LOGITS=0"
for m in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  while [ ! -f /tmp/$m.done ]; do sleep 1; done
  for par in 64 16; do
    bench_steps "$m x$par base" "$BASE" /tmp/$m -p 0 -n 64 -r 1 --parallel $par
    bench_steps "$m x$par prefix" "$PREFIX" /tmp/$m -p 0 -n 64 -r 1 --parallel $par
    bench_steps "$m x$par both" "" /tmp/$m -p 0 -n 64 -r 1 --parallel $par
  done
  if [ $m = llama-3.1-8b ]; then
    for cfg in BASE PREFIX; do
      bench_steps "$m x64 $cfg profile=exec" "${!cfg} TESSERA_CUDA_PROFILE=exec" /tmp/$m -p 0 -n 64 -r 1 --parallel 64
    done
    bench_steps "$m x64 both profile=exec" "TESSERA_CUDA_PROFILE=exec" /tmp/$m -p 0 -n 64 -r 1 --parallel 64
  fi
done
echo "=== end"
