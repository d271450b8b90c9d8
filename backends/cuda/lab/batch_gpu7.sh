#!/bin/bash
# Seventh batch-decode GPU call (final bundle, with the one-piece TMA choice): lab --smallm
# (3 and 1 pieces, bits vs the GEMV), the lab's full checks, CUDA conformance / golden /
# scheduler, engine x64 on 1B exact and bf16 (matmul_precision) for the one-piece choice.
B=.dev/bundle-cuda-batch
export LD_LIBRARY_PATH=$PWD/$B/lib
P=$PWD/$B/lib/tessera/backends
E=$PWD/$B/bin/engine
mkdir -p "$OUT" /tmp/labs && tar -xJf .dev/batch-labs.tar.xz -C /tmp/labs
(python3 bench/make_checkpoint.py --shape llama-3.2-1b --out /tmp/m1b > /dev/null 2>&1; touch /tmp/m1b.done) &
timeout 200 /tmp/labs/cuda_gemm_lab --smallm > "$OUT/lab_smallm.log" 2>&1; echo "lab smallm rc=$?"
timeout 200 /tmp/labs/cuda_gemm_lab --default-only > "$OUT/lab_checks.log" 2>&1; echo "lab checks rc=$?"
grep -hE "FAILED|summary" "$OUT/lab_smallm.log" "$OUT/lab_checks.log" | head
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 90 "$B/bin/op_conformance_test" --gtest_brief=1 > "$OUT/conformance.log" 2>&1; echo "conf rc=$?"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 90 "$B/bin/text_golden_test" --gtest_brief=1 > "$OUT/golden.log" 2>&1; echo "golden rc=$?"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda TESSERA_DEFAULT_MODEL=$PWD/models/default timeout 120 "$B/bin/server_scheduler_test" --gtest_brief=1 > "$OUT/scheduler.log" 2>&1; echo "sched rc=$?"
grep -hE "^\[  (PASSED|FAILED) |FAILED TEST" "$OUT/conformance.log" "$OUT/golden.log" "$OUT/scheduler.log" | head
while [ ! -f /tmp/m1b.done ]; do sleep 1; done
for s in "" "--backend-opt cuda.matmul_precision=bf16"; do
  for sm in 0 ""; do
    echo "--- 1B x64 smallm=${sm:-auto} $s"
    TESSERA_CUDA_GEMM_SMALLM=$sm timeout 60 "$E" bench --backend cuda $s /tmp/m1b -p 0 -n 32 -r 1 --parallel 64 2>&1 | grep -E "^\| tg|error"
  done
done
echo "=== end"
