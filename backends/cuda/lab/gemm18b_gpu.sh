#!/bin/bash
# cu-gemm18's second GPU call (lab/NOTES.md "Prefill GEMM, eighteenth session"): configuration 30
# (26 with conflict-free A fragment loads; the default where WideFits) against 26, from the repo
# root:
# `DEADLINE=N bash .dev/cu-gemm18/g/gemm18b_gpu.sh`, carrying .dev/cu-gemm18/g18.tar.xz (as
# gemm18_gpu.sh). No step starts past $DEADLINE s; logs in $OUT (console.log from the call's tee,
# lab, lab2, default, ratios, engine, prof.tar.gz). Call 2 (22:38 UTC) ran the experimental tree
# (results/gemm18/experiments.patch), where this configuration was 34 and its knob value
# TESSERA_CUDA_GEMM_WIDE=6, as `ENGINE=0 SHAPES=8B.q_o,8B.gate_up,8B.down ORDERS="26,34,34,26
# 34,26,26,34 26,34,34,26" DEADLINE=80`; this is the script for the final tree.
#   1. cuda_gemm_lab --wgmma-only --wg-from=7 with TESSERA_LAB_TMA=26,30: the bit checks (GEMV vs
#      each configuration and the default dispatch at M = 2048 / 100, the zero checks) and a
#      timing pass                                                                 -> lab.log
#      the default dispatch's checks with TESSERA_CUDA_GEMM_WIDE=3 (30 where WideFits) -> default.log
#   2. timing passes with the configurations interleaved (TESSERA_LAB_ORDER=1: 26,30,30,26 then
#      30,26,26,30, ...; the lab's clock drifts down along a shape's sequence)     -> lab2.log
#      per shape mean(30) / mean(26), geometric mean over the shapes WideFits takes -> ratios.log
#   (ENGINE=0: no step 3, ORDERS="..." other interleavings, SHAPES=... fewer shapes)
#   3. if 30 / 26 >= 1.01: CUDA op conformance + text golden with WIDE=3, greedy md5 old / nx (8B
#      bf16 mode with a ~2k-token prompt, 8B exact), engine 8B pp2048 bf16 mode old / nx
#      interleaved, $ROUNDS rounds, and 8B exact once each                          -> engine.log
#   4. ncu of 30 on 8B q_o at M = 2048 (shared-memory wavefronts)                  -> prof.tar.gz
set -u
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
T0=$(date +%s)
DEADLINE=${DEADLINE:-300}
late() {
  [ $(($(date +%s) - T0)) -gt "$DEADLINE" ] && echo "deadline: skipping $1" && return 0
  return 1
}
D=$PWD/.dev/cu-gemm18
[ -d $D/g/bin ] || tar -xJf $D/g18.tar.xz -C $D || exit 1
G=$D/g
export LD_LIBRARY_PATH=$G/lib
E=$G/bin/engine
. backends/cuda/lab/lab_common.sh  # find_cublaslt, make_checkpoints
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
[ "${ENGINE:-1}" = 1 ] && make_checkpoints llama-3.1-8b
find_cublaslt
SHAPES=${SHAPES:-8B.q_o,8B.gate_up,8B.down,1B.q_o,1B.gate_up,1B.down}
echo "=== lab checks TESSERA_LAB_TMA=26,30 $(date +%T)"
TESSERA_LAB_TMA=26,30 TESSERA_LAB_SHAPES=$SHAPES TESSERA_LAB_TERMS=1 timeout 150 "$G/cuda_gemm_lab" \
  --wgmma-only --wg-from=7 > "$OUT/lab.log" 2>&1
echo "lab rc=$? $(date +%T) checks ok: $(grep -c ' ok$' "$OUT/lab.log") FAILED: $(grep -c FAILED "$OUT/lab.log")"
grep -E "FAILED|differ|summary|zero_checks" "$OUT/lab.log" | head -20
TESSERA_CUDA_GEMM_WIDE=3 timeout 90 "$G/cuda_gemm_lab" --wgmma-only --wg-from=99 --default-only \
  > "$OUT/default.log" 2>&1
echo "default (WIDE=3) rc=$? checks ok: $(grep -c ' ok$' "$OUT/default.log") FAILED: $(grep -c FAILED "$OUT/default.log")"
: > "$OUT/lab2.log"
for ord in ${ORDERS:-26,30,30,26 30,26,26,30 26,30,30,26 30,26,26,30}; do
  late "lab order $ord" && break
  TESSERA_LAB_ORDER=1 TESSERA_LAB_TMA=$ord TESSERA_LAB_SHAPES=$SHAPES TESSERA_LAB_TERMS=1 timeout 90 \
    "$G/cuda_gemm_lab" --wgmma-only --wg-from=7 --no-check >> "$OUT/lab2.log" 2>&1
  echo "lab order $ord rc=$? $(date +%T)"
done
python3 - "$OUT" > "$OUT/ratios.log" <<'EOF'
import math, re, sys
vals = {}
for f in ("lab.log", "lab2.log"):
    for l in open(sys.argv[1] + "/" + f):
        m = re.match(r"gemm (\S+) M=(\d+) .* terms=1 .*cublaslt_TFLOP/s=([\d.]+)", l)
        if not m:
            continue
        d = vals.setdefault((m.group(1), int(m.group(2))), {"lt": []})
        d["lt"].append(float(m.group(3)))
        for k, x in re.findall(r" (tma\S+?)=([\d.]+)", l):
            d.setdefault(k, []).append(float(x))
wide = {("8B.q_o", 2048), ("8B.gate_up", 2048), ("8B.down", 2048), ("8B.gate_up", 512)}
g = []
for (s, M), d in sorted(vals.items()):
    a, b = d.get("tma128x256wpq", []), d.get("tma128x256wpqx", [])
    if not a or not b:
        continue
    ma, mb, lt = sum(a) / len(a), sum(b) / len(b), sum(d["lt"]) / len(d["lt"])
    print("%-11s M=%-4d cublaslt %.0f  26 %.0f (%.2f, n=%d: %s)  30 %.0f (%.2f, n=%d: %s)  30/26 %.3f%s" % (
        s, M, lt, ma, ma / lt, len(a), " ".join("%.0f" % x for x in a), mb, mb / lt, len(b),
        " ".join("%.0f" % x for x in b), mb / ma, "  *" if (s, M) in wide else ""))
    if (s, M) in wide:
        g.append(math.log(mb / ma))
print("# geomean 30/26 over the WideFits shapes: %.3f over %d" % (math.exp(sum(g) / len(g)) if g else 0, len(g)))
EOF
cat "$OUT/ratios.log"
v=$(grep "^# geomean" "$OUT/ratios.log" | awk '{print $8}')
if [ "${ENGINE:-1}" = 1 ] && { python3 -c "import sys; sys.exit(0 if ${v:-0} >= ${MIN:-1.01} else 1)" ||
  [ -n "${FORCE_ENGINE:-}" ]; }; then
  side_env() {
    case $1 in
      old) echo "TESSERA_BACKEND_PATH=$G/old" ;;
      nx) echo "TESSERA_BACKEND_PATH=$G/new TESSERA_CUDA_GEMM_WIDE=3" ;;
    esac
  }
  if ! late suites; then
    P=$G/new
    TESSERA_CUDA_GEMM_WIDE=3 TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 120 \
      "$G/op_conformance_test" --gtest_brief=1 > /tmp/tests.log 2>&1
    echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' /tmp/tests.log | tr '\n' ' ')"
    TESSERA_CUDA_GEMM_WIDE=3 TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so \
      TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 120 \
      "$G/text_golden_test" --gtest_brief=1 >> /tmp/tests.log 2>&1
    echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' /tmp/tests.log | tail -1)"
    { echo "=== tests (WIDE=3)"; cat /tmp/tests.log; } >> "$OUT/default.log"
  fi
  ebench() {
    local side=$1 prec=$2 ck=$3 opt=()
    [ "$prec" = bf16 ] && opt=(--backend-opt cuda.matmul_precision=bf16)
    env $(side_env $side) timeout 150 "$E" --backend cuda "${opt[@]}" \
      bench "$ck" -p 2048 -n 0 -r 3 2>&1 | grep -E "^\| (pp|tg)[0-9]|rror" | sed "s/^/    $side /"
  }
  LONG=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 250))")
  s=llama-3.1-8b
  {
    i=0
    while [ ! -f "/tmp/$s.done" ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
    late "md5" || for side in old nx; do
      env $(side_env $side) timeout 90 "$E" --backend cuda run /tmp/$s "t1 t2 t3 t4" \
        --raw -n 32 --temperature 0 2>/dev/null > /tmp/run_$side.txt
      env $(side_env $side) timeout 90 "$E" --backend cuda --backend-opt cuda.matmul_precision=bf16 \
        run /tmp/$s "$LONG" --raw -n 16 --temperature 0 2>/dev/null > /tmp/runb_$side.txt
      echo "  $s $side md5 exact $(md5sum < /tmp/run_$side.txt | cut -c1-12) (bytes $(wc -c < /tmp/run_$side.txt))" \
        "bf16-long $(md5sum < /tmp/runb_$side.txt | cut -c1-12) (bytes $(wc -c < /tmp/runb_$side.txt))"
    done
    echo "--- $s pp2048 bf16 $(date +%T)"
    for r in $(seq 1 "${ROUNDS:-4}"); do
      late "engine round $r" && break
      for side in old nx; do ebench $side bf16 "/tmp/$s"; done
    done
    late "engine exact" || {
      echo "--- $s pp2048 exact $(date +%T)"
      for side in old nx; do ebench $side exact "/tmp/$s"; done
    }
  } 2>&1 | tee "$OUT/engine.log"
fi
# Dummy wgmmas (HGMMA.64x8x16, cu-gemm17) and all HGMMAs in the 128 x 256 tiles 26 (MODE 6) / 30 (11)
cuobjdump -sass "$G/cuda_gemm_lab" 2>/dev/null |
  awk '/Function : /{f=$3} /HGMMA.64x8x16/{c[f]++} /HGMMA/{h[f]++} END{for(k in h) print c[k]+0, h[k], k}' |
  grep -E "GemmTmaKernel.*Li256ELb0ELi3ELi1ELb0ELb0ELb0ELb0ELi0ELb1ELi(6|11)E" | cut -c1-150 |
  sed 's/^/sass dummy, all HGMMA: /'
if ! late prof; then
  mkdir -p /tmp/prof
  # The default dispatch's 53 launches come first (3 warm-up + 5 x 10), then 30's.
  TESSERA_LAB_TMA=30 TESSERA_LAB_SHAPES=8B.q_o TESSERA_LAB_TERMS=1 timeout 60 \
    ncu --clock-control none -k regex:GemmTmaKernel --launch-skip 58 --launch-count 1 \
    --section WarpStateStats --section SchedulerStats --section SourceCounters \
    --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section SpeedOfLight \
    -o /tmp/prof/n30 "$G/cuda_gemm_lab" --wgmma-only --wg-from=7 --no-check > /tmp/prof/n30.run.log 2>&1
  echo "ncu 30 rc=$? $(date +%T)"
  ncu -i /tmp/prof/n30.ncu-rep --page details > /tmp/prof/n30.details.txt 2>&1
  ncu -i /tmp/prof/n30.ncu-rep --page source --csv --print-source sass > /tmp/prof/n30.source.csv 2>&1
  grep -E "TCfg|Duration|Warp Cycles Per Issued|Issued Warp Per|L1/TEX Cache Throughput|Compute \(SM\) Throughput" \
    /tmp/prof/n30.details.txt | cut -c1-150 | head -8
  rm -f /tmp/prof/*.ncu-rep
  tar czf "$OUT/prof.tar.gz" -C /tmp prof
fi
echo "done $(($(date +%s) - T0)) s"
