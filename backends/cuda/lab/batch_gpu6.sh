#!/bin/bash
# Sixth batch-decode GPU call (final bundle): CUDA conformance / golden / scheduler, lab --smallm
# bits, graph replay count in the --parallel loop (TESSERA_CUDA_PROFILE=exec), after numbers
# twice per model (spread), before once.
B=.dev/bundle-cuda-batch
export LD_LIBRARY_PATH=$PWD/$B/lib
P=$PWD/$B/lib/tessera/backends
E=$PWD/$B/bin/engine
mkdir -p "$OUT" /tmp/labs && tar -xJf .dev/batch-labs.tar.xz -C /tmp/labs
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
(for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
timeout 100 /tmp/labs/cuda_gemm_lab --smallm > "$OUT/lab_smallm.log" 2>&1; echo "lab smallm rc=$?"
grep -hE "FAILED|summary" "$OUT/lab_smallm.log" | head -4
timeout 90 /tmp/labs/bench_cuda_kernels --quick > "$OUT/kernels.log" 2>&1; echo "kernels rc=$?"
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 90 "$B/bin/op_conformance_test" --gtest_brief=1 > "$OUT/conformance.log" 2>&1; echo "conf rc=$?"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 90 "$B/bin/text_golden_test" --gtest_brief=1 > "$OUT/golden.log" 2>&1; echo "golden rc=$?"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda TESSERA_DEFAULT_MODEL=$PWD/models/default timeout 120 "$B/bin/server_scheduler_test" --gtest_brief=1 > "$OUT/scheduler.log" 2>&1; echo "sched rc=$?"
grep -hE "^\[  (PASSED|FAILED) |FAILED TEST" "$OUT/conformance.log" "$OUT/golden.log" "$OUT/scheduler.log" | head
bench() {
  local label=$1 envs=$2; shift 2
  echo "--- $label: $envs $*" | tee -a "$OUT/engine.log"
  env $envs TESSERA_BENCH_STEP_TIMES=1 timeout 90 "$E" bench --backend cuda "$@" 2>&1 | grep -E "^\| (pp|tg)|error|bench steps" | tail -2 | tee -a "$OUT/engine.log"
}
OLD="TESSERA_CUDA_GEMM_SMALLM=0 TESSERA_CUDA_PINNED_DOWNLOAD=0"
for m in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  while [ ! -f /tmp/$m.done ]; do sleep 1; done
  bench "$m par64 before" "$OLD" /tmp/$m -p 0 -n 32 -r 1 --parallel 64
  bench "$m par64 after" "" /tmp/$m -p 0 -n 32 -r 2 --parallel 64
  bench "$m par16 after" "" /tmp/$m -p 0 -n 32 -r 2 --parallel 16
done
TESSERA_CUDA_PROFILE=exec timeout 90 "$E" bench --backend cuda /tmp/llama-3.2-1b -p 0 -n 32 -r 1 --parallel 64 2>&1 | grep "cuda profile"
echo "=== end"
