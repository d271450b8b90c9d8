#!/bin/bash
# The lead's second call of the twenty-fifth session (H200): HEAD's prefill beside transformers and
# its GEMMs beside cuBLASLt, neither measured on the H200 since the twenty-third session's start
# (GEMMs never). HEAD ab82b47's bundle as is + its stripped cuda_gemm_lab, from the repo root:
#   run(command="bash backends/cuda/lab/lead25b_gpu.sh", carry=[".dev/bundle25.tar.xz",
#       ".dev/lead25/cuda_gemm_lab.xz"])
#   1. bench/cuda_compare.py --skip-compile --reps 2 --parallel 64 --greedy: the roofline (copy,
#      bf16 matmul), transformers eager prefill 2048 / decode, engine pp2048 / tg128 / tg128x64
#   2. cuda_gemm_lab --no-check --default-only: the default dispatch (exact = 3 pieces and one
#      piece) on the prefill shapes at M = 2048 / 512 next to cuBLASLt (python3's libcublasLt)
#   3. engine pp2048 in bf16 mode (`matmul_precision=bf16`) on the three shapes
# No step starts past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-220}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
tar xJf ${BUNDLE:-.dev/bundle25.tar.xz} -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib
xz -dc .dev/lead25/cuda_gemm_lab.xz > $B/bin/cuda_gemm_lab && chmod +x $B/bin/cuda_gemm_lab
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
echo "=== cuda_compare $(t)"
timeout 200 python3 bench/cuda_compare.py --engine $B/bin/engine --out $OUT \
  --skip-compile --reps 2 --parallel 64 --greedy --keep --tmp /tmp/cc > $OUT/cuda_compare.log 2> $OUT/cuda_compare.err
echo "cuda_compare rc=$?"; grep -vE "^\[" $OUT/cuda_compare.err | tail -5; grep -E "^\[" $OUT/cuda_compare.err | tail -30
echo "=== gemm lab $(t)"
find_cublaslt; echo "cublaslt: ${TESSERA_CUBLASLT:-none}"
left && timeout 120 $B/bin/cuda_gemm_lab --no-check --default-only > $OUT/gemm_lab.log 2>&1
echo "gemm lab rc=$?"; grep -E "^gemm |cublaslt|^device" $OUT/gemm_lab.log | head -40
echo "=== engine pp2048, bf16 mode $(t)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  left || break
  [ -d /tmp/cc/$s ] || continue
  timeout 90 $B/bin/engine bench /tmp/cc/$s --backend cuda -p 2048 -n 0 -r 2 --backend-opt cuda.matmul_precision=bf16 2>&1 |
    grep -E "\| pp|rror" | sed "s/^/  $s bf16 /"
done
echo "total $(t)"
