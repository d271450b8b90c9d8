#!/bin/bash
# Split-K on the TMA small-M tiles (cuda-splitk, one call): lab --smallm-quick with the split-K
# choice off (TESSERA_CUDA_GEMM_TMA_SPLITK=0: "default" = before) and on (default = after, plus
# the tma128x64k / pk configurations, each bit-checked against the GEMV rows), the lab's full
# checks, CUDA conformance / golden / scheduler, engine x64 / x16 on 1B and 8B (and 0.5B x64),
# off / on. Run 2 (final rule) adds the lab at two waves (TESSERA_CUDA_GEMM_TMA_SPLITK=2).
B=.dev/bundle-cuda-splitk
export LD_LIBRARY_PATH=$PWD/$B/lib
P=$PWD/$B/lib/tessera/backends
E=$PWD/$B/bin/engine
mkdir -p "$OUT" /tmp/labs && tar -xJf .dev/splitk-labs.tar.xz -C /tmp/labs
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
(for s in llama-3.2-1b llama-3.1-8b qwen2.5-0.5b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
TESSERA_CUDA_GEMM_TMA_SPLITK=0 timeout 60 /tmp/labs/cuda_gemm_lab --smallm-quick > "$OUT/lab_smallm_off.log" 2>&1; echo "lab smallm off rc=$?"
timeout 60 /tmp/labs/cuda_gemm_lab --smallm-quick > "$OUT/lab_smallm_on.log" 2>&1; echo "lab smallm on rc=$?"
TESSERA_CUDA_GEMM_TMA_SPLITK=2 timeout 60 /tmp/labs/cuda_gemm_lab --smallm-quick > "$OUT/lab_smallm_w2.log" 2>&1; echo "lab smallm w2 rc=$?"
timeout 90 /tmp/labs/cuda_gemm_lab --default-only > "$OUT/lab_checks.log" 2>&1; echo "lab checks rc=$?"
grep -hE "FAILED|summary" "$OUT"/lab_*.log | head
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 90 "$B/bin/op_conformance_test" --gtest_brief=1 > "$OUT/conformance.log" 2>&1; echo "conf rc=$?"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 90 "$B/bin/text_golden_test" --gtest_brief=1 > "$OUT/golden.log" 2>&1; echo "golden rc=$?"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda TESSERA_DEFAULT_MODEL=$PWD/models/default timeout 120 "$B/bin/server_scheduler_test" --gtest_brief=1 > "$OUT/scheduler.log" 2>&1; echo "sched rc=$?"
grep -hE "^\[  (PASSED|FAILED) |FAILED TEST" "$OUT/conformance.log" "$OUT/golden.log" "$OUT/scheduler.log" | head
bench() {
  local label=$1 envs=$2; shift 2
  echo "--- $label: $envs $*" | tee -a "$OUT/engine.log"
  env $envs TESSERA_BENCH_STEP_TIMES=1 timeout 90 "$E" bench --backend cuda "$@" 2>&1 | grep -E "^\| (pp|tg)|error|bench steps" | tail -2 | tee -a "$OUT/engine.log"
}
for m in llama-3.2-1b llama-3.1-8b qwen2.5-0.5b; do
  while [ ! -f /tmp/$m.done ]; do sleep 1; done
  for par in 64 16; do
    [ $m = qwen2.5-0.5b ] && [ $par = 16 ] && continue
    bench "$m par$par off" "TESSERA_CUDA_GEMM_TMA_SPLITK=0" /tmp/$m -p 0 -n 32 -r 2 --parallel $par
    bench "$m par$par on" "" /tmp/$m -p 0 -n 32 -r 2 --parallel $par
  done
done
echo "=== end"
