#!/bin/bash
# Prefill GEMM, thirteenth session (cu-gemm13, issue 5; lab/NOTES.md "Prefill GEMM, thirteenth
# session"): one GPU call from the repo root. Needs .dev/cu-gemm13/bundle.tar.gz (a folder
# "bundle": cuda_gemm_lab, and for TESTS / ENGINE the engine, the suites and the CUDA plugin built
# from this tree) and, for ENGINE, .dev/old13.tar.xz (HEAD e302fcc's engine and plugins, flat: the
# "old" side). Steps (each skippable; logs in $OUT; no step starts past $DEADLINE seconds):
#   LAB=1     cuda_gemm_lab --wgmma-only --wg-from=7: GEMV-vs-GEMM bit checks of the default
#             dispatch and every TMA configuration, timings at M = 2048 and 512 next to
#             cuBLASLt; then LAB_REPS - 1 more timing passes (--no-check)
#   DEF=1     the default dispatch alone (bit checks + timings) with $AB_VAR (default
#             TESSERA_CUDA_GEMM_PERSIST) = each of AB_VALUES (default "1 0 1 0"), one log; or,
#             with DEF_SIDES="old new old new", bin/cuda_gemm_lab_old's and bin/cuda_gemm_lab's
#             in turn ($AB_VAR = AB_VALUE, default 1)
#   TESTS=1   CUDA op conformance and text golden (default dispatch; lab_common.sh
#             conformance_golden)
#   ENGINE=1  engine bench CKPT -p PP (2048) -n 0 -r 2 on SHAPES, exact and bf16, old (HEAD's CUDA
#             plugin) and new alternated (ENGINE_ORDER, default "old new old new")
# The session's two calls (LAB_REPS=2; call 1 also DEF over TESSERA_CUDA_GEMM_AG) ran the
# experimental configurations of results/gemm13/experiments.patch (A fragments from global
# memory, two accumulator sets, the persistent 2-CTA tile, the no-chunk diagnostic); logs in
# results/gemm13/.
B=.dev/cu-gemm13/bundle
T0=$(date +%s)
DEADLINE=${DEADLINE:-420}
late() {
  [ $(($(date +%s) - T0)) -gt "$DEADLINE" ] && echo "deadline: skipping $1" && return 0
  return 1
}
tar -xzf .dev/cu-gemm13/bundle.tar.gz -C .dev/cu-gemm13 || exit 1
export LD_LIBRARY_PATH=$PWD/$B/lib
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
P=$PWD/$B/lib/tessera/backends
E=$PWD/$B/bin/engine
. backends/cuda/lab/lab_common.sh  # cuda_suites, find_cublaslt, make_checkpoints
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
find_cublaslt
echo "cublaslt: $TESSERA_CUBLASLT"
SHAPES=${SHAPES:-llama-3.1-8b llama-3.2-1b}
if [ "${ENGINE:-0}" = 1 ]; then  # checkpoints in the background while the lab runs
  # shellcheck disable=SC2086
  make_checkpoints $SHAPES
  mkdir -p old && tar -xJf .dev/old13.tar.xz -C old  # flat: engine and the plugins
fi
if [ "${LAB:-1}" = 1 ] && ! late lab; then
  echo "=== gemm lab $(date +%T)"
  timeout "${LAB_TIMEOUT:-100}" "$B/bin/cuda_gemm_lab" --wgmma-only --wg-from=7 > "$OUT/lab.log" \
    2>&1
  echo "lab rc=$? $(date +%T)"
  grep -E "FAILED|differ|summary|^device|^wgmma" "$OUT/lab.log" | head -30
  grep -c " ok$" "$OUT/lab.log"
  for r in $(seq 2 "${LAB_REPS:-2}"); do
    late "lab rep $r" && break
    timeout 60 "$B/bin/cuda_gemm_lab" --wgmma-only --wg-from=7 --no-check \
      > "$OUT/lab_rep$r.log" 2>&1
    echo "lab rep $r rc=$? $(date +%T)"
  done
fi
AB_VAR=${AB_VAR:-TESSERA_CUDA_GEMM_PERSIST}
if [ "${DEF:-1}" = 1 ]; then
  # DEF_SIDES="old new ...": the default dispatch of bin/cuda_gemm_lab_old (a lab built from the
  # tree before the change) and of bin/cuda_gemm_lab in turn, instead of the $AB_VAR values.
  for x in ${DEF_SIDES:-${AB_VALUES:-1 0 1 0}}; do
    late "default $x" && break
    lab=$B/bin/cuda_gemm_lab
    [ "$x" = old ] && lab=$B/bin/cuda_gemm_lab_old
    echo "=== default dispatch $x ($AB_VAR=${AB_VALUE:-$x}) $(date +%T)"
    env "$AB_VAR=$([ -n "${DEF_SIDES:-}" ] && echo "${AB_VALUE:-1}" || echo "$x")" timeout 45 \
      "$lab" --wgmma-only --wg-from=99 --default-only > "$OUT/def.tmp" 2>&1
    echo "rc=$? checks ok: $(grep -c ' ok$' "$OUT/def.tmp")"
    grep -E "FAILED|summary|^gemm " "$OUT/def.tmp"
  done 2>&1 | tee "$OUT/default.log" | grep -E "===|rc=|FAILED|summary"
  rm -f "$OUT/def.tmp"
fi
if [ "${TESTS:-0}" = 1 ] && ! late tests; then
  conformance_golden
fi
if [ "${ENGINE:-0}" = 1 ]; then
  for s in $SHAPES; do
    while [ ! -f "/tmp/$s.done" ]; do sleep 1; done
    for prec in exact bf16; do
      for side in ${ENGINE_ORDER:-old new old new}; do
        late "engine $s" && break 3
        dir=$P
        [ "$side" = old ] && dir=$PWD/old
        echo "--- $s $prec $side $(date +%T)"
        TESSERA_BACKEND_PATH=$dir timeout 120 "$E" bench --backend cuda "/tmp/$s" \
          -p "${PP:-2048}" -n 0 -r 2 --backend-opt "cuda.matmul_precision=$prec" 2>&1 |
          grep -E "^\| pp|error" | tail -2
      done
    done
  done 2>&1 | tee "$OUT/engine.log"
fi
echo "done $(($(date +%s) - T0)) s"
