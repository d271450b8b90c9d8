#!/bin/bash
# Second GPU call (batch work): tests on the final default (batches: one-block decode tiles),
# attention checks, and the attention tile choice for batches (TESSERA_CUDA_ATTN_BATCH=0/1/2).
B=.dev/bundle-cuda-batch
export LD_LIBRARY_PATH=$PWD/$B/lib
P=$PWD/$B/lib/tessera/backends
E=$PWD/$B/bin/engine
mkdir -p "$OUT" /tmp/labs && tar -xJf .dev/batch-labs.tar.xz -C /tmp/labs
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
(python3 bench/make_checkpoint.py --shape llama-3.2-1b --out /tmp/m1b > /dev/null 2>&1; touch /tmp/m1b.done) &
timeout 40 /tmp/labs/bench_cuda_kernels --attention > "$OUT/kernels_attention.log" 2>&1; echo "attn rc=$?"
grep -E "^check" "$OUT/kernels_attention.log"
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 60 "$B/bin/op_conformance_test" --gtest_brief=1 > "$OUT/conformance.log" 2>&1; echo "conf rc=$?"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 60 "$B/bin/text_golden_test" --gtest_brief=1 > "$OUT/golden.log" 2>&1; echo "golden rc=$?"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda TESSERA_DEFAULT_MODEL=$PWD/models/default timeout 90 "$B/bin/server_scheduler_test" --gtest_brief=1 > "$OUT/scheduler.log" 2>&1; echo "sched rc=$?"
grep -hE "^\[  (PASSED|FAILED) |FAILED TEST" "$OUT/conformance.log" "$OUT/golden.log" "$OUT/scheduler.log" | head
while [ ! -f /tmp/m1b.done ]; do sleep 1; done
bench() {
  local label=$1 envs=$2; shift 2
  echo "--- $label: $envs $*" | tee -a "$OUT/engine.log"
  env $envs timeout 60 "$E" bench --backend cuda "$@" 2>&1 | grep -E "^\| (pp|tg)|error" |
    tee -a "$OUT/engine.log"
}
OFF="TESSERA_CUDA_GEMM_SPLITK=0 TESSERA_CUDA_ATTN_BATCH=0"
bench "1B par64 before" "$OFF" /tmp/m1b -p 0 -n 32 -r 1 --parallel 64
for a in 0 1 2; do bench "1B par64 attn_batch=$a" "TESSERA_CUDA_ATTN_BATCH=$a" /tmp/m1b -p 0 -n 32 -r 1 --parallel 64; done
bench "1B par64 after (default)" "" /tmp/m1b -p 0 -n 32 -r 1 --parallel 64
bench "1B par16 before" "$OFF" /tmp/m1b -p 0 -n 32 -r 1 --parallel 16
bench "1B par16 after" "" /tmp/m1b -p 0 -n 32 -r 1 --parallel 16
bench "1B batch1 after" "" /tmp/m1b -p 16 -n 128 -r 2
TESSERA_CUDA_PROFILE=1 timeout 30 "$E" bench --backend cuda /tmp/m1b -p 0 -n 32 -r 1 --parallel 64 2>&1 | grep -E "MATMUL|ATTENTION" | head -12
timeout 60 python3 bench/make_checkpoint.py --shape llama-3.1-8b --out /tmp/m8b > /dev/null 2>&1
bench "8B par64 before" "$OFF" /tmp/m8b -p 0 -n 32 -r 1 --parallel 64
bench "8B par64 gemm split only" "TESSERA_CUDA_ATTN_BATCH=0" /tmp/m8b -p 0 -n 32 -r 1 --parallel 64
bench "8B par64 after" "" /tmp/m8b -p 0 -n 32 -r 1 --parallel 64
echo "=== end"
