#!/bin/bash
# One GPU-machine session over a relocatable bundle (bash ci/bundle.sh BUILD .dev/bundle
# --gpu-tests: the suites and ref_logprobs in its bin/; carry .dev/bundle and .gl): CUDA
# conformance + golden, batch invariance on CUDA (scheduler suite + HTTP BatchingTest), the Vulkan
# check (backends/vulkan/gpu_check.sh), engine bench with Vulkan and CUDA on the same checkpoints,
# and every backend against transformers on two full-size configs (bench/ref_check_gpu.sh).
# Usage: bash ci/gpu_session.sh [BUNDLE]
B=${1:-.dev/bundle}
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
P=$PWD/$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "=== CUDA conformance"
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 200 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/cc.log 2>&1
echo "rc=$?"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED TEST|Failure" $OUT/cc.log | head
echo "=== CUDA golden"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda \
  TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 200 $B/bin/text_golden_test --gtest_brief=1 > $OUT/cg.log 2>&1
echo "rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED TEST|Failure" $OUT/cg.log | head
echo "=== default device choice"
$B/bin/engine devices 2>&1 | head
TESSERA_BUNDLE=$B BENCH_TIMEOUT=120 TG=128 bash backends/vulkan/gpu_check.sh
echo "=== bench cuda, same checkpoint"
timeout 120 $B/bin/engine bench --backend cuda /tmp/q05 -p 512 -n 128 -r 2 2>&1 | tail -6
for shape in llama-3.2-1b llama-3.1-8b; do
  echo "=== $shape shape: vulkan vs cuda"
  timeout 150 python3 bench/make_checkpoint.py --shape $shape --out /tmp/$shape 2>&1 | tail -1
  for be in vulkan cuda; do
    timeout 150 $B/bin/engine bench --backend $be /tmp/$shape -p 512 -n 128 -r 2 2>&1 | tail -5
  done
done
echo "=== engine devices -v (plugin ABI, live memory)"
$B/bin/engine devices -v 2>&1 | grep -iE "abi|memory|cuda|vulkan" | head -20
echo "=== server_scheduler_test on cuda"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda \
  TESSERA_DEFAULT_MODEL=$PWD/models/default timeout 300 $B/bin/server_scheduler_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure|device|cuda" | head -20
echo "=== HTTP BatchingTest through engine serve on cuda"
TESSERA_BACKEND=cuda timeout 300 python3 tests/server/server_test.py --engine $B/bin/engine BatchingTest 2>&1 | tail -15
echo "=== full-size checkpoints against transformers (bench/ref_check.py)"
OUT=$OUT/ref SHAPES=qwen2.5-0.5b,gemma-3-1b timeout 300 bash bench/ref_check_gpu.sh "$B" 2>&1 |
  grep -E '"pass": false|"error"|failed' | tail -12
