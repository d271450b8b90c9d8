#!/bin/bash
# cu-l2's GPU calls (twelfth session): the L2 prefetch hint (TESSERA_CUDA_L2_PREFETCH, lab/NOTES.md
# "L2 prefetch hint"). Measured slower, so not in the tree: build from 4579911 with
# `patch -p1 < backends/cuda/lab/results/l2pf_hint.diff` applied (the knobs, cuda_gemv_lab --l2pf).
# From the repo root, carrying .dev/cu-l2/bundle.tar.gz (that tree's bundle,
# cuda_gemv_lab / op_conformance_test / text_golden_test in bin/, the twelfth session's old CUDA
# plugin as old/libtessera_backend_cuda.so). Steps: the lab's hint checks and timings
# (cuda_gemv_lab --l2pf), CUDA conformance + golden with the hint on, greedy bytes with the hint
# on vs off, then engine tg128 (`-p 16 -n 128 -r 3`) per configuration, rounds interleaved:
# old (HEAD's plugin), off (TESSERA_CUDA_L2_PREFETCH=0), and the hint settings in CFGS_<shape>.
# Steps stop starting past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
T0=$(date +%s); DEADLINE=${DEADLINE:-240}
left() { [ $(( $(date +%s) - T0 )) -lt "$DEADLINE" ]; }
tar xzf .dev/cu-l2/bundle.tar.gz -C .dev/cu-l2
B=$PWD/.dev/cu-l2/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -f /tmp/*.done  # a warm machine keeps /tmp: else a checkpoint is rewritten under a run
(for s in ${SHAPES:-qwen2.5-0.5b llama-3.1-8b llama-3.2-1b}; do
  python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done
done) &
rm -rf /tmp/old && cp -r "$B" /tmp/old && cp "$B/old/libtessera_backend_cuda.so" /tmp/old/lib/tessera/backends/
# eb DIR ENV... -- ARGS: engine bench on CUDA from bundle DIR with the ENV assignments.
eb() { local d=$1; shift; local envs=(); while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
  env ${envs[@]+"${envs[@]}"} LD_LIBRARY_PATH=$d/lib timeout 100 "$d/bin/engine" bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg[0-9]|rror|cuda l2pf" | sed 's/^/    /'; }
greedy() {  # greedy bytes, hint on / off
  local m=$1; for v in 32 0; do
    TESSERA_CUDA_L2_PREFETCH=$v timeout 60 "$B/bin/engine" run "$m" "The quick brown fox" --raw -n 48 \
      --temperature 0 --backend cuda > /tmp/greedy_$v.txt 2>/dev/null; echo "rc=$?"; done
  md5sum /tmp/greedy_32.txt /tmp/greedy_0.txt
  cmp /tmp/greedy_32.txt /tmp/greedy_0.txt && echo "greedy $m: same bytes ($(wc -c < /tmp/greedy_0.txt) B)"
}
if [ "${LAB:-1}" = 1 ]; then
echo "=== lab --l2pf"
timeout 90 "$B/bin/cuda_gemv_lab" --l2pf > "$OUT/lab.log" 2>&1; echo "lab rc=$?"
grep -E "^(device|copy|checked|l2pf|summary)|FAILED" "$OUT/lab.log" | grep -v "same bits" ; grep -c "same bits" "$OUT/lab.log"
echo "=== CUDA conformance + golden (hint on, 32 MiB; then all flags)"
for fl in 0 19; do
  TESSERA_CUDA_L2_PREFETCH=32 TESSERA_CUDA_L2_PREFETCH_FLAGS=$fl TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so \
    timeout 100 "$B/bin/op_conformance_test" --gtest_brief=1 > "$OUT/tests.log" 2>&1; echo "conf flags=$fl rc=$?"
  TESSERA_CUDA_L2_PREFETCH=32 TESSERA_CUDA_L2_PREFETCH_FLAGS=$fl TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so \
    TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models \
    timeout 100 "$B/bin/text_golden_test" --gtest_brief=1 >> "$OUT/tests.log" 2>&1; echo "golden flags=$fl rc=$?"
  grep -hE "^\[  (PASSED|FAILED) |FAILED TEST" "$OUT/tests.log" | head -6
done
echo "checks t=$(( $(date +%s) - T0 )) s"
greedy models/default
fi
# Configurations: L = TESSERA_CUDA_L2_PREFETCH (MiB), F = its _FLAGS, G = TESSERA_CUDA_GEMV_PREF
# (16: each GEMV block's whole task range before its PDL wait), D=1 the hints on stderr, joined
# by '+'.
# Call 1: the defaults below. Call 2: LAB=0 ROUNDS=4 SHAPES="qwen2.5-0.5b llama-3.2-1b"
# CFGS_qwen2_5_0_5b="L=8 L=16+D=1 L=24" CFGS_llama_3_2_1b="L=16+D=1" (F=32: attention hints only).
CFGS_qwen2_5_0_5b=${CFGS_qwen2_5_0_5b:-"L=16 L=32+D=1 L=32+F=1 L=32+F=2"}
CFGS_llama_3_2_1b=${CFGS_llama_3_2_1b:-"L=32+D=1 L=32+F=1 L=0+G=25"}
CFGS_llama_3_1_8b=${CFGS_llama_3_1_8b:-"L=32+D=1 L=32+F=16 L=0+G=27"}
SHAPES=${SHAPES:-"qwen2.5-0.5b llama-3.1-8b llama-3.2-1b"}
envs_of() { echo "$1" | tr '+' ' ' | sed -e 's/\bL=/TESSERA_CUDA_L2_PREFETCH=/' \
  -e 's/\bF=/TESSERA_CUDA_L2_PREFETCH_FLAGS=/' -e 's/\bG=/TESSERA_CUDA_GEMV_PREF=/' \
  -e 's/\bD=/TESSERA_CUDA_L2_PREFETCH_DEBUG=/'; }
for s in $SHAPES; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  [ $s = qwen2.5-0.5b ] && [ "${LAB:-1}" = 1 ] && greedy /tmp/$s
  v=CFGS_${s//[.-]/_}
  for r in $(seq "${ROUNDS:-2}"); do
    left || break
    echo "=== $s r$r old"; eb /tmp/old -- /tmp/$s -p 16 -n 128 -r 3
    echo "=== $s r$r off"; eb "$B" TESSERA_CUDA_L2_PREFETCH=0 -- /tmp/$s -p 16 -n 128 -r 3
    for c in ${!v}; do
      echo "=== $s r$r $c"
      # shellcheck disable=SC2046
      eb "$B" $(envs_of "$c") -- /tmp/$s -p 16 -n 128 -r 3
    done
    echo "  t=$(( $(date +%s) - T0 )) s"
  done
done
echo "total $(( $(date +%s) - T0 )) s"
