#!/bin/bash
# (Runs with results/gemv4_preload_csplit.diff applied: the tree no longer has the --gemv4 lab mode or its knobs.)
# One GPU-machine call for the decode GEMV's register preload and chunk split (issue 5,
# cuda-gemv4: TESSERA_CUDA_GEMV_PRELOAD, TESSERA_CUDA_GEMV_CSPLIT), from the repo root against a
# relocatable bundle (default .dev/bundle-gemv4, or .dev/bundle-gemv4.tar.gz if that was carried;
# cuda_gemv_lab and the test binaries in its bin/). Steps (each skippable):
#   1. LAB=1: cuda_gemv_lab --gemv4 (GEMV bit checks incl. the new paths against the GEMM and the
#      plain launches, then old / preload / chunk split timings per shape); the checkpoints of
#      $SHAPES are made meanwhile;
#   2. ENGINE=1: engine tg128 per shape for each configuration of $CONFIGS (NAME=PRELOAD/CSPLIT,
#      "d" = both unset, the default), $ROUNDS rounds interleaved (same machine, one call);
#   3. TESTS=1: CUDA op conformance, text golden, server scheduler once per ";"-separated entry
#      of $TEST_ENVS (default: the defaults, then every new path on), each skipped once the call
#      has run $TESTS_AFTER seconds.
# Logs in $OUT (gemv4_*.log).
B=${TESSERA_BUNDLE:-.dev/bundle-gemv4}
if [ ! -d "$B" ] && [ -f "$B.tar.gz" ]; then
  tar -C "$(dirname "$B")" -xzf "$B.tar.gz"
fi
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
P=$PWD/$B/lib/tessera/backends
SHAPES=${SHAPES:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}
. backends/cuda/lab/lab_common.sh  # bench, cuda_suites, make_checkpoints
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
[ "${ENGINE:-1}" = 1 ] && make_checkpoints $SHAPES
if [ "${LAB:-1}" = 1 ]; then
  echo "=== gemv lab --gemv4 $(date +%T)"
  GEMV_LAB_GEMV_ONLY=1 timeout "${LAB_TIMEOUT:-110}" "$B/bin/cuda_gemv_lab" --gemv4 \
    > "$OUT/gemv4_lab.log" 2>&1
  echo "lab rc=$?"
  grep -E "FAILED|DIFFERENT|failures|^copy" "$OUT/gemv4_lab.log" | head
  echo "same bits lines: $(grep -c 'same bits' "$OUT/gemv4_lab.log")"
  grep -E "^gemv |^prologue_v " "$OUT/gemv4_lab.log" | sed -E 's/ GB\/s=[0-9]+//'
fi
if [ "${ENGINE:-1}" = 1 ]; then
  for shape in $SHAPES; do
    for _ in $(seq 600); do [ -f "/tmp/$shape.done" ] && break; sleep 1; done
    echo "=== $shape $(date +%T)"
    for r in $(seq "${ROUNDS:-1}"); do
      for c in ${CONFIGS:-off=0/0 pre=3/0 cs=0/1 both=3/1}; do
        name=${c%%=*} v=${c#*=}
        if [ "$v" = d ]; then
          bench "$shape $name r$r" "/tmp/$shape" TESSERA_X=1
        else
          bench "$shape $name r$r" "/tmp/$shape" TESSERA_CUDA_GEMV_PRELOAD=${v%/*} \
            TESSERA_CUDA_GEMV_CSPLIT=${v#*/}
        fi
      done
    done 2>&1 | tee -a "$OUT/gemv4_engine.log"
    rm -rf "/tmp/$shape"
  done
fi
if [ "${TESTS:-1}" = 1 ]; then
  # One suite run per ";"-separated TEST_ENVS entry ("d" = nothing set: the defaults).
  IFS=';' read -r -a envs <<< "${TEST_ENVS:-d;TESSERA_CUDA_GEMV_PRELOAD=3 TESSERA_CUDA_GEMV_CSPLIT=1}"
  for te in "${envs[@]}"; do
    if [ "$SECONDS" -ge "${TESTS_AFTER:-230}" ]; then echo "tests skipped (time): $te"; continue; fi
    [ "$te" = d ] && te=TESSERA_X=1
    echo "=== tests $te $(date +%T)"
    # shellcheck disable=SC2086
    env $te bash -c ". backends/cuda/lab/lab_common.sh; B=$B P=$P OUT=$OUT; cuda_suites"
    cp "$OUT/tests.log" "$OUT/gemv4_tests_$(echo "$te" | tr -c 'A-Za-z0-9\n' _).log" 2>/dev/null
  done
fi
echo "=== end $(date +%T) (${SECONDS}s)"
