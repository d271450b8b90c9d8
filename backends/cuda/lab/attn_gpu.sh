#!/bin/bash
# One GPU-machine call for the attention work (issue 5), from the repo root, against a
# relocatable bundle (default .dev/bundle-cuda-attn; bench_cuda_kernels, op_conformance_test and
# text_golden_test copied into its bin/). Steps: the kernel lab's attention part (timings of the
# legacy / nocap / default kernels, bit checks), CUDA op conformance + text golden (TESTS=0
# skips), then engine pp2048/tg128 on SHAPES with the default kernel and TESSERA_CUDA_ATTN=legacy
# (ENGINE=0 skips). Logs go to $OUT.
B=${TESSERA_BUNDLE:-.dev/bundle-cuda-attn}
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
P=$PWD/$B/lib/tessera/backends
. backends/cuda/lab/lab_common.sh  # conformance_golden
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "=== bench_cuda_kernels --attention"
timeout 240 "$B/bin/bench_cuda_kernels" --attention > "$OUT/attn_bench.log" 2>&1
echo "bench rc=$?"
cat "$OUT/attn_bench.log"
if [ "${TESTS:-1}" = 1 ]; then
  conformance_golden attn_
  if [ -x "$B/bin/cuda_backend_test" ]; then
    echo "=== cuda_backend_test"
    TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 100 "$B/bin/cuda_backend_test" \
      --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED) |FAILED TEST|Failure" | head
  fi
fi
if [ "${ENGINE:-1}" = 1 ]; then
  echo "=== engine (default, then legacy attention)"
  PYTHONUNBUFFERED=1 timeout "${COMPARE_TIMEOUT:-400}" python3 bench/cuda_compare.py \
    --engine "$B/bin/engine" --out "$OUT" --skip-compile --skip-hf --reps 2 --reps-8b 2 \
    --shapes "${SHAPES:-qwen2.5-0.5b,llama-3.2-1b,llama-3.1-8b}" \
    --variant legacy:TESSERA_CUDA_ATTN=legacy ${COMPARE_EXTRA:-} 2>&1 |
    grep -vE '^\{' | grep -vE "^cuda profile: +0\.0" | tee "$OUT/attn_engine.log" | tail -60
fi
