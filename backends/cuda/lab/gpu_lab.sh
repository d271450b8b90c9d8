#!/bin/bash
# One GPU-machine call for the decode-speed work (issue 5), from the repo root, against a
# relocatable bundle (default .dev/bundle-cuda; cuda_gemv_lab and the test binaries copied into
# its bin/). Steps (each skippable): the GEMV lab (LAB=0 skips), correctness on CUDA
# (TESTS=1: op conformance, text golden; SCHED=1: server scheduler batch invariance), then
# bench/cuda_compare.py engine-only with COMPARE_ARGS (unset: skipped). Logs go to $OUT.
#   TESTS=1 COMPARE_ARGS="--shapes qwen2.5-0.5b" bash backends/cuda/lab/gpu_lab.sh
B=${TESSERA_BUNDLE:-.dev/bundle-cuda}
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
P=$PWD/$B/lib/tessera/backends
. backends/cuda/lab/lab_common.sh  # conformance_golden
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
if [ "${LAB:-1}" != 0 ]; then
  echo "=== gemv lab"
  timeout "${LAB_TIMEOUT:-180}" "$B/bin/cuda_gemv_lab" ${LAB_ARGS:-} > "$OUT/lab.log" 2>&1
  echo "lab rc=$?"
  grep -E "FAILED|failures|^copy|checked" "$OUT/lab.log" | head -30
  sed -n '/^shape /,$p' "$OUT/lab.log"
fi
if [ "${TESTS:-0}" = 1 ]; then
  conformance_golden
fi
if [ "${SCHED:-0}" = 1 ]; then
  echo "=== server_scheduler_test on cuda (batch invariance)"
  TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so \
    TESSERA_TEST_BACKEND=cuda TESSERA_DEFAULT_MODEL=$PWD/models/default timeout 300 \
    "$B/bin/server_scheduler_test" --gtest_brief=1 > "$OUT/scheduler.log" 2>&1
  echo "rc=$?"
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST|Failure" "$OUT/scheduler.log" | head
fi
if [ -n "${COMPARE_ARGS+x}" ]; then
  echo "=== cuda_compare $COMPARE_ARGS"
  PYTHONUNBUFFERED=1 timeout "${COMPARE_TIMEOUT:-400}" python3 bench/cuda_compare.py \
    --engine "$B/bin/engine" --out "$OUT" --skip-compile --skip-hf $COMPARE_ARGS 2>&1 |
    grep -vE '^\{' | grep -vE "^cuda profile: +0\.0" | tee "$OUT/compare.log" | tail -120
fi
