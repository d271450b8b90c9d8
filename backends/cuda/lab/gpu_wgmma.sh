#!/bin/bash
# One GPU-machine call for the wgmma work (issue 5), from the repo root, against a relocatable
# bundle ($TESSERA_BUNDLE, default .dev/bundle-cuda-wgmma, with cuda_wgmma_probe, cuda_gemm_lab,
# bench_cuda_kernels, op_conformance_test and text_golden_test in its bin/). Steps:
#   PROBE=1   cuda_wgmma_probe: do wgmma k16 steps round like mma.sync's (any N, any position)?
#   LAB=1     cuda_gemm_lab --wgmma-only: GEMV-vs-GEMM bit checks (default dispatch and every
#             wgmma configuration), timings next to cuBLASLt; then the default dispatch with
#             TESSERA_CUDA_GEMM_WGMMA=0 (the mma.sync kernels: "before")
#   BENCH=1   bench_cuda_kernels --quick
#   TESTS=1   op conformance and the text golden suite on CUDA, default and TESSERA_CUDA_GEMM_WGMMA=1
#   ENGINE=1  engine bench -p 2048 on SHAPES, exact and bf16, wgmma auto and off
B=${TESSERA_BUNDLE:-.dev/bundle-cuda-wgmma}
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
P=$PWD/$B/lib/tessera/backends
. backends/cuda/lab/lab_common.sh  # find_cublaslt
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
find_cublaslt
if [ "${PROBE:-1}" = 1 ]; then
  echo "=== wgmma probe"
  timeout 90 "$B/bin/cuda_wgmma_probe" ${PROBE_ARGS:-512} > "$OUT/wgmma_probe.log" 2>&1
  echo "probe rc=$?"
  tail -3 "$OUT/wgmma_probe.log"
fi
if [ "${LAB:-1}" = 1 ]; then
  echo "=== gemm lab (wgmma)"
  timeout "${LAB_TIMEOUT:-200}" "$B/bin/cuda_gemm_lab" --wgmma-only ${LAB_ARGS:-} > "$OUT/wgmma_lab.log" 2>&1
  echo "lab rc=$?"
  grep -E "FAILED|differ|summary|^device|^wgmma" "$OUT/wgmma_lab.log" | head -40
  grep -c " ok$" "$OUT/wgmma_lab.log"
  grep -E "^gemm " "$OUT/wgmma_lab.log"
  echo "=== gemm lab, TESSERA_CUDA_GEMM_WGMMA=0 (before)"
  TESSERA_CUDA_GEMM_WGMMA=0 timeout 120 "$B/bin/cuda_gemm_lab" --no-check --default-only \
    > "$OUT/wgmma_lab_off.log" 2>&1
  echo "lab off rc=$?"
  grep -E "^gemm " "$OUT/wgmma_lab_off.log" | sed 's/ kernel_TFLOP.*//'
fi
if [ "${BENCH:-1}" = 1 ]; then
  echo "=== bench_cuda_kernels --quick"
  timeout 180 "$B/bin/bench_cuda_kernels" --quick > "$OUT/bench.log" 2>&1
  echo "bench rc=$?"
  grep -E "FAILED|summary|^gemm_bf16|^accuracy gemm" "$OUT/bench.log"
fi
if [ "${TESTS:-1}" = 1 ]; then
  for mode in auto 1; do
    env=""
    [ "$mode" = 1 ] && env="TESSERA_CUDA_GEMM_WGMMA=1"
    echo "=== CUDA conformance wgmma=$mode"
    env $env TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 200 \
      "$B/bin/op_conformance_test" --gtest_brief=1 > "$OUT/conformance_$mode.log" 2>&1
    echo "rc=$?"
    grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED TEST|Failure" "$OUT/conformance_$mode.log" | head
    echo "=== CUDA golden wgmma=$mode"
    env $env TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so \
      TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 200 \
      "$B/bin/text_golden_test" --gtest_brief=1 > "$OUT/golden_$mode.log" 2>&1
    echo "rc=$?"
    grep -E "^\[  (PASSED|FAILED) |FAILED TEST|Failure" "$OUT/golden_$mode.log" | head
  done
fi
if [ "${ENGINE:-1}" = 1 ]; then
  for shape in ${SHAPES:-llama-3.2-1b llama-3.1-8b}; do
    timeout 150 python3 bench/make_checkpoint.py --shape "$shape" --out "/tmp/$shape" 2>&1 | tail -1
    for wg in auto 0; do
      for prec in exact bf16; do
        echo "=== engine $shape wgmma=$wg precision=$prec"
        env TESSERA_CUDA_GEMM_WGMMA=$wg timeout 150 "$B/bin/engine" bench --backend cuda \
          "/tmp/$shape" -p 2048 -n 16 -r 2 --backend-opt "cuda.matmul_precision=$prec" 2>&1 | tail -4
      done
    done
  done 2>&1 | tee "$OUT/engine.log"
fi
