#!/bin/bash
# What a perf session runs on the GPU machine from the repo root against a relocatable bundle
# (default .dev/bundle-cuda, extra binaries in its bin/): CUDA op conformance, the text golden
# suite on CUDA, the kernel lab, then bench/cuda_compare.py with ARGS. Logs go to $OUT.
#   COMPARE_ARGS="--skip-hf --profile --shapes qwen2.5-0.5b" bash backends/cuda/gpu_perf.sh
B=${TESSERA_BUNDLE:-.dev/bundle-cuda}
export LD_LIBRARY_PATH=$PWD/$B/lib
CUDA_SO=$PWD/$B/lib/tessera/backends/libtessera_backend_cuda.so
CPU_SO=$PWD/$B/lib/tessera/backends/libtessera_backend_cpu.so
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  echo "=== conformance"
  TESSERA_CONFORMANCE_PLUGINS=$CUDA_SO timeout 200 $B/bin/op_conformance_test --gtest_brief=1 \
    > $OUT/conformance.log 2>&1
  echo "conformance rc=$?"
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST|Failure" $OUT/conformance.log | head -30
  echo "=== golden (cuda first, cpu fallback)"
  TESSERA_TEST_PLUGINS=$CUDA_SO:$CPU_SO TESSERA_TEST_BACKEND=cuda \
    TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 200 $B/bin/text_golden_test \
    --gtest_brief=1 > $OUT/golden.log 2>&1
  echo "golden rc=$?"
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST|Failure" $OUT/golden.log | head -30
  echo "=== kernel lab"
  timeout 200 $B/bin/bench_cuda_kernels ${BENCH_ARGS:-} > $OUT/bench.log 2>&1
  echo "bench rc=$?"
  grep -vE "^check .* ok$" $OUT/bench.log
fi
if [ -n "${COMPARE_ARGS+x}" ]; then
  echo "=== cuda_compare $COMPARE_ARGS"
  PYTHONUNBUFFERED=1 timeout ${COMPARE_TIMEOUT:-400} python3 bench/cuda_compare.py \
    --engine $B/bin/engine --out $OUT --skip-compile $COMPARE_ARGS 2>&1 |
    grep -vE '^\{' | tee $OUT/compare.log
fi
