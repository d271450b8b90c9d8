#!/bin/bash
# Residual ADD and SWIGLU in the decode-batch GEMM, shared x split (cuda-agg3, one call): lab --addfuse
# (LaunchGemmBf16Fused vs the SWIGLU / ADD kernels around LaunchGemmBf16, bit for bit, M = 9 / 16 /
# 33 / 64 on the 0.5B / 1B / 8B o and down projections, 3 and 1 pieces; and LaunchGemmBf16Members
# vs the norm + each GEMM on 8B q/k/v and the gate/up pairs; cold-L2 times of both),
# CUDA conformance / golden / scheduler with the default knobs, the per-op profile of an 8B
# x 64 step (fusions on, TESSERA_CUDA_FUSE_DEBUG=1: refusals), then engine `bench -p 0 -n 64 -r 1
# --parallel 64|16` on 8B, 1B, 0.5B with the knobs (_ADD_SMALLM, _SWIGLU_SMALLM, _SPLIT_SHARE)
# off / add + share / all alternated in the same call (TESSERA_BENCH_STEP_TIMES=1 for the step
# split), each alone on 8B x 64, batch-1 tg128 off / all. SKIP_LAB=1 / SKIP_SUITES=1 skip parts.
# Run 1 (results/agg3_h100_run1_*): ADD + SWIGLU only, the first SWIGLU split kernel; run 2
# (results/agg3_h100_run2_*): the suites ran with all three on (the defaults then).
B=.dev/bundle-cuda-agg3
[ -f .dev/bundle-cuda-agg3.tar.gz ] && tar -xzf .dev/bundle-cuda-agg3.tar.gz -C .dev
export LD_LIBRARY_PATH=$PWD/$B/lib
P=$PWD/$B/lib/tessera/backends
E=$PWD/$B/bin/engine
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
. backends/cuda/lab/lab_common.sh  # make_checkpoints, cuda_suites, bench_steps, bench
make_checkpoints llama-3.1-8b llama-3.2-1b qwen2.5-0.5b
K=TESSERA_CUDA_FUSE
OFF="${K}_ADD_SMALLM=0 ${K}_SWIGLU_SMALLM=0 ${K}_SPLIT_SHARE=0"
AH="${K}_ADD_SMALLM=1 ${K}_SWIGLU_SMALLM=0 ${K}_SPLIT_SHARE=1"
ALL="${K}_ADD_SMALLM=1 ${K}_SWIGLU_SMALLM=1 ${K}_SPLIT_SHARE=1"
if [ "${SKIP_LAB:-0}" != 1 ]; then
  timeout 150 $B/bin/cuda_gemm_lab --addfuse > "$OUT/lab_addfuse.log" 2>&1; echo "lab addfuse rc=$? $(date +%T)"
  grep -c " ok$" "$OUT/lab_addfuse.log"; grep -hE "FAILED|DIFF|not_fusable|summary|error" "$OUT/lab_addfuse.log" | head -20
  grep -hE "^(addfuse|members) .*M64_terms3" "$OUT/lab_addfuse.log" | head -16
fi
[ "${SKIP_SUITES:-0}" != 1 ] && { cuda_suites; echo "suites done $(date +%T)"; }
m=llama-3.1-8b
while [ ! -f /tmp/$m.done ]; do sleep 1; done
TESSERA_CUDA_FUSE_DEBUG=1 TESSERA_CUDA_PROFILE=1 timeout 60 "$E" bench --backend cuda /tmp/$m -p 0 -n 4 -r 1 --parallel 64 > "$OUT/ops_8b_on.log" 2>&1
grep -E "refused|cuda profile" "$OUT/ops_8b_on.log" | head -24
run() { bench_steps "$1 x$2 $3" "$4" /tmp/$1 -p 0 -n 64 -r 1 --parallel $2; }
run $m 64 off "$OFF"; run $m 64 add+share "$AH"; run $m 64 all "$ALL"
run $m 64 share "${K}_ADD_SMALLM=0 ${K}_SWIGLU_SMALLM=0 ${K}_SPLIT_SHARE=1"
run $m 64 add "${K}_ADD_SMALLM=1 ${K}_SWIGLU_SMALLM=0 ${K}_SPLIT_SHARE=0"
run $m 64 "off (2)" "$OFF"; run $m 64 "add+share (2)" "$AH"
run $m 16 off "$OFF"; run $m 16 add+share "$AH"; run $m 16 all "$ALL"
for m in llama-3.2-1b qwen2.5-0.5b; do
  while [ ! -f /tmp/$m.done ]; do sleep 1; done
  for par in 64 16; do run $m $par off "$OFF"; run $m $par add+share "$AH"; run $m $par all "$ALL"; done
done
echo "=== batch 1 tg128 $(date +%T)"
for m in qwen2.5-0.5b llama-3.2-1b; do
  REPS=2 bench "$m off" /tmp/$m $OFF
  REPS=2 bench "$m all" /tmp/$m $ALL
done
echo "=== end $(date +%T)"
