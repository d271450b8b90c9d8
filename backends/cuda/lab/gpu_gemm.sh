#!/bin/bash
# One GPU-machine call for the prefill GEMM work (issue 5), from the repo root, against a
# relocatable bundle (default .dev/bundle-cuda-gemm, with cuda_gemm_lab, bench_cuda_kernels,
# op_conformance_test and text_golden_test copied into its bin/). Steps (each skippable):
#   LAB=1     cuda_gemm_lab: bit checks of every configuration vs the GEMV, the sweep over the
#             prefill shapes with cuBLASLt next to it; then the same default-only with
#             TESSERA_CUDA_GEMM=old (the kernels before k_gemm_bf16.cu)
#   BENCH=1   bench_cuda_kernels --quick (accuracy, GEMV/GEMM bit checks, timings)
#   TESTS=1   op conformance and the text golden suite on CUDA
#   WGMMA=1   cuda_wgmma_probe (if in the bundle): do wgmma k16 steps round like mma.sync's?
#   ENGINE=1  engine bench -p 2048 -n 16 -r 2 on SHAPES, exact and bf16, new and old GEMM
# cuBLASLt: $TESSERA_CUBLASLT, else the first libcublasLt.so* under python3's site-packages.
B=${TESSERA_BUNDLE:-.dev/bundle-cuda-gemm}
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
P=$PWD/$B/lib/tessera/backends
. backends/cuda/lab/lab_common.sh  # conformance_golden, find_cublaslt
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
find_cublaslt
echo "cublaslt: ${TESSERA_CUBLASLT:-none}"
if [ "${LAB:-1}" = 1 ]; then
  echo "=== gemm lab"
  timeout "${LAB_TIMEOUT:-240}" "$B/bin/cuda_gemm_lab" ${LAB_ARGS:-} > "$OUT/gemm_lab.log" 2>&1
  echo "lab rc=$?"
  grep -E "FAILED|summary|cublaslt (un|no|mis)|^device" "$OUT/gemm_lab.log" | head -30
  grep -E "^gemm " "$OUT/gemm_lab.log"
  if grep -q FAILED "$OUT/gemm_lab.log"; then
    # A bit check failed: the rest runs with the verified (plain) configurations only.
    export TESSERA_CUDA_GEMM_PIPE=0
    echo "=== bit check failures: TESSERA_CUDA_GEMM_PIPE=0 from here on"
    timeout 120 "$B/bin/cuda_gemm_lab" --default-only > "$OUT/gemm_lab_plain.log" 2>&1
    echo "lab plain rc=$?"
    grep -E "FAILED|summary|^gemm " "$OUT/gemm_lab_plain.log"
  fi
  echo "=== gemm lab, old kernels"
  TESSERA_CUDA_GEMM=old timeout 120 "$B/bin/cuda_gemm_lab" --no-check --default-only \
    > "$OUT/gemm_lab_old.log" 2>&1
  echo "lab old rc=$?"
  grep -E "^gemm " "$OUT/gemm_lab_old.log"
fi
if [ "${WGMMA:-1}" = 1 ] && [ -x "$B/bin/cuda_wgmma_probe" ]; then
  echo "=== wgmma vs mma.sync rounding probe"
  timeout 60 "$B/bin/cuda_wgmma_probe" 2>&1 | tee "$OUT/wgmma_probe.log" | tail -6
fi
if [ "${BENCH:-1}" = 1 ]; then
  echo "=== bench_cuda_kernels --quick"
  timeout 180 "$B/bin/bench_cuda_kernels" --quick > "$OUT/bench.log" 2>&1
  echo "bench rc=$?"
  grep -E "FAILED|summary|^gemm_bf16|^accuracy gemm" "$OUT/bench.log"
fi
if [ "${TESTS:-1}" = 1 ]; then
  conformance_golden
fi
if [ "${ENGINE:-1}" = 1 ]; then
  for shape in ${SHAPES:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}; do
    timeout 150 python3 bench/make_checkpoint.py --shape "$shape" --out "/tmp/$shape" 2>&1 | tail -1
    for gemm in new old; do
      for prec in exact bf16; do
        env=""
        [ "$gemm" = old ] && env="TESSERA_CUDA_GEMM=old"
        echo "=== engine $shape gemm=$gemm precision=$prec"
        env $env timeout 150 "$B/bin/engine" bench --backend cuda "/tmp/$shape" -p 2048 -n 16 \
          -r 2 --backend-opt "cuda.matmul_precision=$prec" 2>&1 | tail -4
      done
    done
  done 2>&1 | tee "$OUT/engine.log"
fi
