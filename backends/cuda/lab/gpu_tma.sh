#!/bin/bash
# One GPU-machine call for the TMA-fed wgmma GEMM (k_gemm_tma.cu, issue 5), from the repo root,
# against a relocatable bundle ($TESSERA_BUNDLE, default .dev/bundle-cuda-gemm, with
# cuda_gemm_lab, op_conformance_test and text_golden_test in its bin/). Steps (each skippable):
#   LAB=1     cuda_gemm_lab --wgmma-only --wg-from=5: GEMV-vs-GEMM bit checks of the default
#             dispatch, wg5/wg6 (the best cp.async kernels) and every TMA configuration, timings
#             next to cuBLASLt; then the default dispatch with TESSERA_CUDA_GEMM_TMA=0 (before)
#   TESTS=1   op conformance and the text golden suite on CUDA (default dispatch: TMA)
#   ENGINE=1  engine bench -p 2048 on SHAPES, exact and bf16, TMA on (default) and off
# When the working tree plus the bundle pass the device's 64 MiB, carry the bundle as a tarball:
#   tar -cJf .dev/cg/cg.tar.xz -C .dev bundle-cuda-gemm; run `tar -xJf .dev/cg/cg.tar.xz -C .dev &&
#   bash backends/cuda/lab/gpu_tma.sh` with carry [".dev/cg"] (what run 5 did).
B=${TESSERA_BUNDLE:-.dev/bundle-cuda-gemm}
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
P=$PWD/$B/lib/tessera/backends
. backends/cuda/lab/lab_common.sh  # conformance_golden, find_cublaslt
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
find_cublaslt
if [ "${ENGINE:-1}" = 1 ]; then  # checkpoints in the background while the lab runs
  (for shape in ${SHAPES:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}; do
    python3 bench/make_checkpoint.py --shape "$shape" --out "/tmp/$shape" > "/tmp/ckpt_$shape.log" 2>&1
  done; touch /tmp/ckpt_done) &
fi
if [ "${LAB:-1}" = 1 ]; then
  echo "=== gemm lab (TMA)"
  timeout "${LAB_TIMEOUT:-150}" "$B/bin/cuda_gemm_lab" --wgmma-only --wg-from=5 ${LAB_ARGS:-} \
    > "$OUT/tma_lab.log" 2>&1
  echo "lab rc=$?"
  grep -E "FAILED|differ|summary|^device|^wgmma" "$OUT/tma_lab.log" | head -30
  grep -c " ok$" "$OUT/tma_lab.log"
  grep -E "^gemm " "$OUT/tma_lab.log" | sed -e 's/ split_us=[0-9.]*//' -e 's/ wgmma_split_us=[0-9.]*//'
  echo "=== gemm lab default dispatch, TESSERA_CUDA_GEMM_TMA=0 (before)"
  TESSERA_CUDA_GEMM_TMA=0 timeout 60 "$B/bin/cuda_gemm_lab" --no-check --default-only \
    > "$OUT/tma_lab_off.log" 2>&1
  echo "lab off rc=$?"
  grep -E "^gemm " "$OUT/tma_lab_off.log"
fi
if [ "${TESTS:-1}" = 1 ]; then
  conformance_golden
fi
if [ "${ENGINE:-1}" = 1 ]; then
  while [ ! -f /tmp/ckpt_done ]; do sleep 1; done
  for shape in ${SHAPES:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}; do
    tail -1 "/tmp/ckpt_$shape.log"
    for tma in 1 0; do
      for prec in exact bf16; do
        echo "=== engine $shape tma=$tma precision=$prec"
        env TESSERA_CUDA_GEMM_TMA=$tma timeout 120 "$B/bin/engine" bench --backend cuda \
          "/tmp/$shape" -p 2048 -n 16 -r 2 --backend-opt "cuda.matmul_precision=$prec" 2>&1 | tail -3
      done
    done
  done 2>&1 | tee "$OUT/engine.log"
fi
