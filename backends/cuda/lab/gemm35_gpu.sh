#!/bin/bash
# gemm35_gpu.sh BUNDLE_TAR (thirty-fifth session): the one-piece prefill GEMMs against cuBLASLt on
# the H200 kernel against kernel. The twenty-fifth session's ratios (lab/results/lead25/
# call3_gemm_vs_cublaslt.log) timed our default dispatch, which includes the x split pre-pass
# (f32 -> bf16 planes), against cuBLASLt on planes split beforehand; this times each candidate
# TMA tile alone on the same planes (`cuda_gemm_lab --wgmma-only`, best_vs_cublaslt) and the
# split alone. The tar holds bundle/bin/cuda_gemm_lab. Log $OUT/gemm35.log.
T=${1:?bundle tar}
W=/tmp/g35; mkdir -p $W; tar -C $W -xJf "$T"; B=$W/bundle; export LD_LIBRARY_PATH=$B/lib
. backends/cuda/lab/lab_common.sh
find_cublaslt; echo "cublaslt: $TESSERA_CUBLASLT"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
TESSERA_LAB_TMA=${CFGS:-5,12,18,19,27,30} TESSERA_LAB_TERMS=1 timeout 500 $B/bin/cuda_gemm_lab \
  --wgmma-only --wg-from=7 --no-check > $OUT/gemm35.log 2>&1
echo "rc=$?"
grep -E "^gemm" $OUT/gemm35.log | sed -E 's/ kernel_TFLOP.*wgmma_split_us=[0-9.]+//' | cut -c1-330
