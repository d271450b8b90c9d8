# Shared by the GPU lab scripts (sourced, not run): pieces every decode A/B script repeats.
# Needs $B (the relocatable bundle the script runs from).

# bench NAME DIR ENV...: batch-1 decode of checkpoint DIR on CUDA (`engine bench -p 16 -n 128
# -r ${REPS:-3}`) with the ENV assignments set, printing a "--- NAME: ENV" header and the tg128 row.
bench() {
  local name=$1 dir=$2
  shift 2
  echo "--- $name: $*"
  env "$@" timeout 120 "$B/bin/engine" bench --backend cuda "$dir" -p 16 -n 128 -r "${REPS:-3}" 2>&1 |
    grep -E "tg128"
}

# cuda_suites: CUDA op conformance, text golden and server_scheduler_test (batch invariance) on
# the bundle's plugin ($P: its backends folder), logs in $OUT/tests.log; one rc line each, then
# the pass/fail lines.
cuda_suites() {
  local plugins=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so
  TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 90 "$B/bin/op_conformance_test" \
    --gtest_brief=1 > "$OUT/tests.log" 2>&1
  echo "conf rc=$?"
  TESSERA_TEST_PLUGINS=$plugins TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models \
    timeout 90 "$B/bin/text_golden_test" --gtest_brief=1 >> "$OUT/tests.log" 2>&1
  echo "golden rc=$?"
  TESSERA_TEST_PLUGINS=$plugins TESSERA_TEST_BACKEND=cuda TESSERA_DEFAULT_MODEL=$PWD/models/default \
    timeout 120 "$B/bin/server_scheduler_test" --gtest_brief=1 >> "$OUT/tests.log" 2>&1
  echo "sched rc=$?"
  grep -hE "^\[  (PASSED|FAILED) |FAILED TEST" "$OUT/tests.log" | head
}

# conformance_golden [PREFIX]: CUDA op conformance and the text golden suite on the bundle's
# plugin ($P), logs $OUT/PREFIXconformance.log and $OUT/PREFIXgolden.log; a header, an rc line
# and the pass/fail lines each.
conformance_golden() {
  local pre=${1:-}
  echo "=== CUDA conformance"
  TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 200 \
    "$B/bin/op_conformance_test" --gtest_brief=1 > "$OUT/${pre}conformance.log" 2>&1
  echo "rc=$?"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED TEST|Failure" "$OUT/${pre}conformance.log" | head
  echo "=== CUDA golden"
  TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so \
    TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 200 \
    "$B/bin/text_golden_test" --gtest_brief=1 > "$OUT/${pre}golden.log" 2>&1
  echo "rc=$?"
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST|Failure" "$OUT/${pre}golden.log" | head
}

# find_cublaslt: exports TESSERA_CUBLASLT (the lab's cuBLASLt yardstick, dlopen'ed) unless set:
# the first libcublasLt.so* under python3's site-packages (torch's wheels bring one).
find_cublaslt() {
  if [ -z "${TESSERA_CUBLASLT:-}" ]; then
    local sp
    sp=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
    # shellcheck disable=SC2086
    TESSERA_CUBLASLT=$(find $sp -name 'libcublasLt.so*' 2>/dev/null | head -1)
    export TESSERA_CUBLASLT
  fi
}

# make_checkpoints SHAPE...: bench/make_checkpoint.py for each shape into /tmp/SHAPE, in the
# background (the lab runs meanwhile), touching /tmp/SHAPE.done as each is ready (markers are
# cleared first: a warm machine may hold those of checkpoints an earlier call left half written).
make_checkpoints() {
  local s
  for s in "$@"; do rm -f "/tmp/$s.done"; done
  (for s in "$@"; do
    python3 bench/make_checkpoint.py --shape "$s" --out "/tmp/$s" > "/tmp/$s.ckpt.log" 2>&1
    touch "/tmp/$s.done"
  done) &
}

# bench_steps LABEL "ENV..." ARGS...: `engine bench --backend cuda ARGS` ($E: the engine) with the
# ENV assignments and TESSERA_BENCH_STEP_TIMES=1 (the step's host split), appended to
# $OUT/engine.log.
bench_steps() {
  local label=$1 envs=$2
  shift 2
  echo "--- $label: $envs $*" | tee -a "$OUT/engine.log"
  env $envs TESSERA_BENCH_STEP_TIMES=1 timeout 60 "$E" bench --backend cuda "$@" 2>&1 |
    grep -E "^\| (pp|tg)|error|bench steps|execute of|download" | tail -6 | tee -a "$OUT/engine.log"
}

# kernels_quick TAG: bench_cuda_kernels --quick (its bit checks), log $OUT/TAG_kernels.log.
kernels_quick() {
  echo "=== bench_cuda_kernels --quick (default) $(date +%T)"
  timeout 150 "$B/bin/bench_cuda_kernels" --quick > "$OUT/$1_kernels.log" 2>&1
  echo "rc=$?"
  grep -iE "fail|summary|mismatch" "$OUT/$1_kernels.log" | head -10
}

# suites_per_pipe TAG: CUDA conformance, golden and scheduler (gpu_lab.sh) once for each
# TESSERA_CUDA_GEMV_PIPE value in ${TESTS_PIPES:-d} (d: unset, the default), logs
# $OUT/TAG_{conformance,golden,scheduler}_<value>.log.
suites_per_pipe() {
  local tp tpv f
  for tp in ${TESTS_PIPES:-d}; do
    [ "$tp" = d ] && tpv="" || tpv=$tp
    echo "=== tests PIPE=$tp $(date +%T)"
    TESSERA_CUDA_GEMV_PIPE=$tpv OUT=$OUT/tests TESSERA_BUNDLE=$B LAB=0 TESTS=1 SCHED=1 \
      bash backends/cuda/lab/gpu_lab.sh 2>&1 | grep -v "^NVIDIA"
    for f in conformance golden scheduler; do cp "$OUT/tests/$f.log" "$OUT/$1_${f}_$tp.log"; done
    rm -rf "$OUT/tests"
  done
}

# make_ckpts SHAPE...: bench/make_checkpoint.py for each shape into /tmp/SHAPE in the background
# (marker /tmp/SHAPE.done when written; a shape already done on a warm machine is kept, since
# rewriting it under a running engine breaks that run); wait_ckpt SHAPE waits up to 200 s for it.
make_ckpts() {
  local s
  for s in "$@"; do
    [ -f "/tmp/$s.done" ] && continue
    (python3 bench/make_checkpoint.py --shape "$s" --out "/tmp/$s" > "/tmp/$s.log" 2>&1
      touch "/tmp/$s.done") &
  done
}
wait_ckpt() {
  local i
  for i in $(seq 1 200); do [ -f "/tmp/$1.done" ] && return 0; sleep 1; done
  return 1
}
