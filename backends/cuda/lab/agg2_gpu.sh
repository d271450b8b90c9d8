#!/bin/bash
# RMS_NORM folded into the decode-batch GEMM's x split (cuda-agg2, one call): lab --normfuse
# (LaunchGemmBf16Rms vs the norm kernel + LaunchGemmBf16, bit for bit, M = 9/16/33/64, 0.5B / 1B /
# 8B q, gate, heads; cold-L2 times of both), CUDA conformance / golden / scheduler with the fusion
# on (default), a per-op profile showing it fires, then engine `bench -p 0 -n 64 -r 1 --parallel
# 64|16` on 8B, 1B, 0.5B with TESSERA_CUDA_FUSE_NORM_SMALLM=0 / 1 alternated in the same call
# (TESSERA_BENCH_STEP_TIMES=1 for the step split), and the per-op profile of an 8B x 64 step.
# Run 1 (results/agg2_h100_run1_*) had the first RmsSplitKernel (x read twice, no staging).
B=.dev/bundle-cuda-agg2
[ -f .dev/bundle-cuda-agg2.tar.gz ] && tar -xzf .dev/bundle-cuda-agg2.tar.gz -C .dev
export LD_LIBRARY_PATH=$PWD/$B/lib
P=$PWD/$B/lib/tessera/backends
E=$PWD/$B/bin/engine
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
. backends/cuda/lab/lab_common.sh  # make_checkpoints, cuda_suites, bench_steps
make_checkpoints llama-3.1-8b llama-3.2-1b qwen2.5-0.5b
timeout 100 $B/bin/cuda_gemm_lab --normfuse > "$OUT/lab_normfuse.log" 2>&1; echo "lab normfuse rc=$?"
grep -c " ok$" "$OUT/lab_normfuse.log"; grep -hE "FAILED|DIFF|not_fusable|summary" "$OUT/lab_normfuse.log" | head -20
cuda_suites
while [ ! -f /tmp/llama-3.2-1b.done ]; do sleep 1; done
TESSERA_CUDA_FUSE_DEBUG=1 TESSERA_CUDA_PROFILE=1 timeout 60 "$E" bench --backend cuda /tmp/llama-3.2-1b -p 0 -n 4 -r 1 --parallel 64 > "$OUT/ops_1b.log" 2>&1
grep -E "refused|RMS_NORM" "$OUT/ops_1b.log" | head -12
for m in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  while [ ! -f /tmp/$m.done ]; do sleep 1; done
  for par in 64 16; do
    bench_steps "$m x$par off" "TESSERA_CUDA_FUSE_NORM_SMALLM=0" /tmp/$m -p 0 -n 64 -r 1 --parallel $par
    bench_steps "$m x$par on" "TESSERA_CUDA_FUSE_NORM_SMALLM=1" /tmp/$m -p 0 -n 64 -r 1 --parallel $par
  done
done
m=llama-3.1-8b
# Per-op profile (a sync after every launch: upper bounds) of an 8B x 64 step, off vs on.
for v in 0 1; do
  TESSERA_CUDA_FUSE_NORM_SMALLM=$v TESSERA_CUDA_PROFILE=1 timeout 60 "$E" bench --backend cuda /tmp/$m -p 0 -n 4 -r 1 --parallel 64 > "$OUT/ops_8b_$v.log" 2>&1
  echo "8B x64 profile FUSE_NORM_SMALLM=$v"; grep -E "cuda profile" "$OUT/ops_8b_$v.log" | head -14
done
bench_steps "$m x64 off (2)" "TESSERA_CUDA_FUSE_NORM_SMALLM=0" /tmp/$m -p 0 -n 64 -r 1 --parallel 64
bench_steps "$m x64 on (2)" "TESSERA_CUDA_FUSE_NORM_SMALLM=1" /tmp/$m -p 0 -n 64 -r 1 --parallel 64
echo "=== end"
