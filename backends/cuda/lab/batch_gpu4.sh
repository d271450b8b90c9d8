#!/bin/bash
# Fourth batch-decode GPU call: small-M kernels (lab --smallm: every GEMM kernel at M = 64 / 16 on
# the decode shapes, cold L2, bits vs the GEMV) with the default dispatch old (SMALLM=0) and
# GEMV-per-token-group (SMALLM=1); engine --parallel 64/16 with the pinned logits download on/off
# and the small-M choice 0 / auto / 1.
B=.dev/bundle-cuda-batch
export LD_LIBRARY_PATH=$PWD/$B/lib
E=$PWD/$B/bin/engine
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
(for s in qwen2.5-0.5b llama-3.2-1b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; done; touch /tmp/ck.done) &
for sm in 0 1; do
  TESSERA_CUDA_GEMM_SMALLM=$sm timeout 100 $B/bin/cuda_gemm_lab --smallm > "$OUT/lab_smallm$sm.log" 2>&1; echo "lab smallm=$sm rc=$?"
done
grep -hE "FAILED|summary" "$OUT"/lab_smallm*.log | head
while [ ! -f /tmp/ck.done ]; do sleep 1; done
bench() {
  local label=$1 envs=$2; shift 2
  echo "--- $label: $envs $*" | tee -a "$OUT/engine.log"
  env $envs TESSERA_BENCH_STEP_TIMES=1 timeout 60 "$E" bench --backend cuda "$@" 2>&1 | grep -E "^\| (pp|tg)|error|bench steps" | tail -2 | tee -a "$OUT/engine.log"
}
for m in qwen2.5-0.5b llama-3.2-1b; do
  for par in 64 16; do
    bench "$m par$par before" "TESSERA_CUDA_GEMM_SMALLM=0 TESSERA_CUDA_PINNED_DOWNLOAD=0" /tmp/$m -p 0 -n 32 -r 1 --parallel $par
    bench "$m par$par pinned dl" "TESSERA_CUDA_GEMM_SMALLM=0" /tmp/$m -p 0 -n 32 -r 1 --parallel $par
    bench "$m par$par pinned+auto" "" /tmp/$m -p 0 -n 32 -r 1 --parallel $par
    bench "$m par$par pinned+smallm1" "TESSERA_CUDA_GEMM_SMALLM=1" /tmp/$m -p 0 -n 32 -r 1 --parallel $par
  done
  TESSERA_CUDA_PROFILE=1 timeout 60 "$E" bench --backend cuda /tmp/$m -p 0 -n 32 -r 1 --parallel 64 > "$OUT/ops_$m.log" 2>&1
  grep -E "cuda profile" "$OUT/ops_$m.log" | head -9
done
bench "1B batch1" "" /tmp/llama-3.2-1b -p 16 -n 64 -r 1
echo "=== end"
