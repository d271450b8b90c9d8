#!/bin/bash
# cu-gemm17b's GPU call (seventeenth session; lab/NOTES.md "Three-piece tiles without the dummy
# wgmma"), from the repo root: `DEADLINE=N bash .dev/cu-gemm17b/g/gemm17b_gpu.sh`, carrying
# .dev/cu-gemm17b/g17b.tar.xz (folder "g": bin/engine + lib/ = HEAD 7620c91's engine bundle
# without plugins; old/ = HEAD's CUDA plugin (build/perf) + CPU plugin; new/ = this tree's CUDA
# plugin + the CPU plugin; cuda_gemm_lab, op_conformance_test, text_golden_test; this script).
# "This tree" = HEAD 7620c91 + results/gemm17b/pqu3.patch (the three-piece configurations 26 ..
# 29 without the per-block branch, TESSERA_CUDA_GEMM_PQU3, TESSERA_CUDA_GEMM_WIDE1B): measured in
# call 1 (20:28 UTC, H100, logs results/gemm17b/h100_call1_*), not kept, so not in the tree.
# Each side's plugins are picked with TESSERA_BACKEND_PATH=DIR. No step starts past $DEADLINE s.
#   1. cuda_gemm_lab --wgmma-only --wg-from=7, TESSERA_LAB_TMA=26,27,28,29: GEMV-vs-GEMM bit
#      checks of the new three-piece configurations (and the default dispatch, the zero checks)
#                                                                                -> lab.log
#      the default dispatch's checks with TESSERA_CUDA_GEMM_PQU3=14 (26 / 28 / 29) and
#      TESSERA_CUDA_GEMM_WIDE1B=1, then PQU3=13 (27)                             -> default.log
#      two timing passes, three pieces, old and new tiles side by side           -> lab2.log, lab3.log
#   2. the side nx: TESSERA_CUDA_GEMM_PQU3 = the sum of the bits whose tile beat the old one by
#      >= 1% (geometric mean over the shapes the default runs it on, both passes); CUDA op
#      conformance + text golden with it (and WIDE1B=1); greedy md5 old / nx
#   3. engine pp2048 exact mode (`engine --backend cuda bench CKPT -p 2048 -n 0 -r 3`) on 1B,
#      0.5B, 8B, old / nx interleaved, 2 rounds; 1B bf16 mode old / nw (WIDE1B=1)   -> engine.log
set -u
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
T0=$(date +%s)
DEADLINE=${DEADLINE:-115}
late() {
  [ $(($(date +%s) - T0)) -gt "$DEADLINE" ] && echo "deadline: skipping $1" && return 0
  return 1
}
D=$PWD/.dev/cu-gemm17b
[ -d $D/g/bin ] || tar -xJf $D/g17b.tar.xz -C $D || exit 1
G=$D/g
export LD_LIBRARY_PATH=$G/lib
E=$G/bin/engine
. backends/cuda/lab/lab_common.sh  # find_cublaslt
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
# Checkpoints in two background jobs (the 8B alone: 60-90 s).
ck() {
  for s in "$@"; do rm -f "/tmp/$s.done"; done
  (for s in "$@"; do
    python3 bench/make_checkpoint.py --shape "$s" --out "/tmp/$s" > "/tmp/$s.ckpt.log" 2>&1
    touch "/tmp/$s.done"
  done) &
}
ck llama-3.1-8b
ck llama-3.2-1b qwen2.5-0.5b
waitck() {
  local i=0
  while [ ! -f "/tmp/$1.done" ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
}
find_cublaslt
echo "cublaslt: $TESSERA_CUBLASLT"
# 1. bits
echo "=== lab checks $(date +%T)"
TESSERA_LAB_TMA=26,27,28,29 TESSERA_LAB_SHAPES=none timeout 80 "$G/cuda_gemm_lab" \
  --wgmma-only --wg-from=7 > "$OUT/lab.log" 2>&1
echo "lab rc=$? $(date +%T) checks ok: $(grep -c ' ok$' "$OUT/lab.log") FAILED: $(grep -c FAILED "$OUT/lab.log")"
grep -E "FAILED|differ|summary|^device|zero_checks" "$OUT/lab.log" | head -12
: > "$OUT/default.log"
for q in 14 13; do
  late "default $q" && break
  echo "--- PQU3=$q WIDE1B=1" >> "$OUT/default.log"
  TESSERA_CUDA_GEMM_PQU3=$q TESSERA_CUDA_GEMM_WIDE1B=1 TESSERA_LAB_SHAPES=none timeout 60 \
    "$G/cuda_gemm_lab" --wgmma-only --wg-from=99 --default-only >> "$OUT/default.log" 2>&1
  echo "default PQU3=$q WIDE1B=1 rc=$? $(date +%T) checks ok: $(grep -c ' ok$' "$OUT/default.log") FAILED: $(grep -c FAILED "$OUT/default.log")"
done
grep -E "FAILED|summary" "$OUT/default.log" | head -6
# timings: 18 / 21 / 26 / 27 (128 x 128), 19 / 28 (128 x 64), 13 / 29 (split-K 128 x 64)
for r in 2 3; do
  late "lab pass $r" && break
  TESSERA_LAB_TMA=18,26,27,21,19,28,13,29 TESSERA_LAB_TERMS=3 timeout 60 \
    "$G/cuda_gemm_lab" --wgmma-only --wg-from=7 --no-check > "$OUT/lab$r.log" 2>&1
  echo "lab pass $r rc=$? $(date +%T)"
done
# Per shape: new / old tile, and the knob bits that pay.
NX=$(python3 - "$OUT" 2> "$OUT/ratios.log" <<'EOF'
import glob, math, re, sys
pairs = {"tma128x128": [("tma128x128pqu", "tma128x128q", 2), ("tma128x128qu", "tma128x128q", 1),
                        ("tma128x128pq", "tma128x128q", 0)],
         "tma128x64p": [("tma128x64pqu", "tma128x64pq", 4)],
         "split": [("tma128x64pku", "tma128x64pk", 8)]}
logs = {}
for f in sorted(glob.glob(sys.argv[1] + "/lab[23].log")):
    for l in open(f):
        m = re.match(r"gemm (\S+) M=(\d+) .* terms=3 .* auto=(\S+)", l)
        if not m:
            continue
        auto = m.group(3)
        c = re.search(r"cublaslt_TFLOP/s=([\d.]+)", l)
        lt = float(c.group(1)) if c else 0.0
        v = {k: float(x) for k, x in re.findall(r" (tma\S+?)=([\d.]+)", l)}
        key = "split" if "_split_" in auto else auto
        print("%-12s M=%-4s auto=%-32s cublaslt %.0f " % (m.group(1), m.group(2), auto, lt) +
              " ".join("%s=%.0f" % (k, x) for k, x in v.items()), file=sys.stderr)
        for new, old, bit in pairs.get(key, []):
            if new in v and old in v:
                r = v[new] / v[old]
                print("    %s / %s = %.3f" % (new, old, r), file=sys.stderr)
                logs.setdefault((new, old, bit), []).append(math.log(r))
bits = 0
g = {}
for (new, old, bit), l in logs.items():
    g[bit] = math.exp(sum(l) / len(l))
    print("# geomean %s / %s: %.3f over %d" % (new, old, g[bit], len(l)), file=sys.stderr)
if g.get(2, 0) >= 1.01 and g.get(2, 0) >= g.get(1, 0):
    bits |= 2
elif g.get(1, 0) >= 1.01:
    bits |= 1
for b in (4, 8):
    if g.get(b, 0) >= 1.01:
        bits |= b
print(bits)
EOF
)
grep -E "^#" "$OUT/ratios.log"
NX=${PQU3:-$NX}
echo "chosen TESSERA_CUDA_GEMM_PQU3=$NX for side nx"
# 2. suites with the knobs (all new paths if none was chosen)
SQ=$NX
[ "$SQ" = 0 ] && SQ=14
if ! late suites; then
  P=$G/new
  TESSERA_CUDA_GEMM_PQU3=$SQ TESSERA_CUDA_GEMM_WIDE1B=1 TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so \
    timeout 60 "$G/op_conformance_test" --gtest_brief=1 > "$OUT/tests.log" 2>&1
  echo "conformance (PQU3=$SQ WIDE1B=1) rc=$? $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/tests.log" | tr '\n' ' ')"
  TESSERA_CUDA_GEMM_PQU3=$SQ TESSERA_CUDA_GEMM_WIDE1B=1 TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so \
    TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 60 \
    "$G/text_golden_test" --gtest_brief=1 >> "$OUT/tests.log" 2>&1
  echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/tests.log" | tail -1)"
fi
# 3. md5 and engine
side_env() {
  case $1 in
    old) echo "TESSERA_BACKEND_PATH=$G/old" ;;
    nx) echo "TESSERA_BACKEND_PATH=$G/new TESSERA_CUDA_GEMM_PQU3=$NX" ;;
    nw) echo "TESSERA_BACKEND_PATH=$G/new TESSERA_CUDA_GEMM_WIDE1B=1" ;;
  esac
}
ebench() {
  local side=$1 prec=$2 ck=$3 opt=()
  [ "$prec" = bf16 ] && opt=(--backend-opt cuda.matmul_precision=bf16)
  env $(side_env $side) timeout 40 "$E" --backend cuda "${opt[@]}" \
    bench "$ck" -p 2048 -n 0 -r 3 2>&1 | grep -E "^\| (pp|tg)[0-9]|rror" | sed "s/^/    $side /"
}
md5() {  # md5 MODEL PREC SIDE...
  local s=$1 prec=$2 opt=()
  shift 2
  [ "$prec" = bf16 ] && opt=(--backend-opt cuda.matmul_precision=bf16)
  for side in "$@"; do
    env $(side_env $side) timeout 40 "$E" --backend cuda "${opt[@]}" run /tmp/$s "t1 t2 t3 t4" \
      --raw -n 32 --temperature 0 2>/dev/null > /tmp/run_${s}_${prec}_$side.txt
    echo "  $s $prec $side md5 $(md5sum < /tmp/run_${s}_${prec}_$side.txt | cut -c1-12) (bytes $(wc -c < /tmp/run_${s}_${prec}_$side.txt))"
  done
}
{
  # The 8B as soon as its checkpoint is there (the step that matters most), the 0.5B meanwhile.
  order="llama-3.2-1b llama-3.1-8b qwen2.5-0.5b"
  [ -f /tmp/llama-3.1-8b.done ] || order="llama-3.2-1b qwen2.5-0.5b llama-3.1-8b"
  for s in $order; do
    late "$s" && continue
    waitck $s
    md5 $s exact old nx
    echo "--- $s pp2048 exact $(date +%T)"
    for side in old nx old nx; do ebench $side exact "/tmp/$s"; done
  done
  if ! late "1B bf16"; then
    md5 llama-3.2-1b bf16 old nw
    echo "--- llama-3.2-1b pp2048 bf16 $(date +%T)"
    for side in old nw old nw; do ebench $side bf16 /tmp/llama-3.2-1b; done
  fi
} 2>&1 | tee "$OUT/engine.log"
echo "done $(($(date +%s) - T0)) s"
