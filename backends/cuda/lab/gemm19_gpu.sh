#!/bin/bash
# cu-gemm19's GPU call (nineteenth session; lab/NOTES.md "Prefill GEMM, nineteenth session"):
# configuration 31 (30 in 2-CTA clusters along the weight rows that multicast the shared x tile)
# against 30 and 26. From the repo root: `DEADLINE=N bash .dev/cu-gemm19/g/gemm19_gpu.sh`,
# carrying .dev/cu-gemm19/g19.tar.xz (folder g: bin/ = HEAD df38488's engine, op_conformance_test
# and text_golden_test (.dev/bundle19) and this tree's cuda_gemm_lab; lib/ = bundle19's libraries
# without plugins; old/ = HEAD's CUDA + CPU plugins; new/ = this tree's CUDA plugin, whose default
# is TESSERA_CUDA_GEMM_WIDE=4 (31 where WideFits), + HEAD's CPU plugin; this script). Each side's
# plugins are picked with TESSERA_BACKEND_PATH=DIR. No step starts past $DEADLINE s; logs in $OUT.
# Configuration 31 was measured and not kept: the kernel, the knob value and the lab's
# tma_cluster_slots line are in results/gemm19/experiments.patch (applies to HEAD df38488; the
# bundle above is built from that tree). Call 1 (00:36 UTC, `DEADLINE=170`, 121 s wall): logs
# results/gemm19/h100_call1_*.log; 31 / 30 = 0.978 on the WideFits shapes, so step 3 did not run.
# Step 4's ncu ran with --launch-skip 20 and both profiles caught the default dispatch's launches
# (31 with WIDE=4); it now skips 58 as gemm18b_gpu.sh does (the default's 53 launches first).
#   1. cuda_gemm_lab --wgmma-only --wg-from=7 with TESSERA_LAB_TMA=30,31: the bit checks (GEMV vs
#      each configuration at M = 2048 / 100 on 4096 x 4096, 1000 x 1064, 384 x 14336 (3 weight-row
#      tiles: 31 runs unclustered), 2048 x 1064, one and three pieces; the zero checks; the default
#      dispatch, here WIDE=4) and a timing pass on $SHAPES, one piece               -> lab.log
#      the default dispatch's checks (WIDE=4, this tree's default)                 -> default.log
#   2. timing passes, TESSERA_LAB_ORDER=1, the six orders of 26, 30, 31 (the lab's clock drifts
#      down along a shape's sequence)                                              -> lab2.log
#      per shape: mean TFLOP/s of each, fraction of cuBLASLt, 31 / 30; geometric mean of 31 / 30
#      over the shapes WideFits takes (8B q_o, gate_up, down at 2048, gate_up at 512) -> ratios.log
#   3. if that is >= $MIN (1.01) or FORCE_ENGINE is set: CUDA op conformance + text golden on new/,
#      greedy md5 old / new (8B exact, 8B bf16 mode with a ~2k-token prompt), engine pp2048 old /
#      new interleaved: 8B bf16 mode x 3, 1B bf16 mode x 2, 8B exact x 1           -> engine.log
#   4. SASS (dummy wgmmas, HGMMAs, registers) of 30 / 31; ncu of 30 and 31 on 8B gate_up at
#      M = 2048 (L2 / DRAM throughput, stalls) if the call is younger than $PROF_BY s -> prof.tar.gz
set -u
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
T0=$(date +%s)
DEADLINE=${DEADLINE:-170}
late() {
  [ $(($(date +%s) - T0)) -gt "$DEADLINE" ] && echo "deadline: skipping $1" && return 0
  return 1
}
D=$PWD/.dev/cu-gemm19
[ -d $D/g/bin ] || tar -xJf $D/g19.tar.xz -C $D || exit 1
G=$D/g
export LD_LIBRARY_PATH=$G/lib
E=$G/bin/engine
L=$G/bin/cuda_gemm_lab
. backends/cuda/lab/lab_common.sh  # find_cublaslt, make_checkpoints
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
MODELS="llama-3.1-8b llama-3.2-1b"
[ "${ENGINE:-1}" = 1 ] && make_checkpoints $MODELS
find_cublaslt
echo "cublaslt: $TESSERA_CUBLASLT"
SHAPES=${SHAPES:-8B.q_o,8B.gate_up,8B.down}
echo "=== lab checks TESSERA_LAB_TMA=30,31 $(date +%T)"
TESSERA_LAB_TMA=30,31 TESSERA_LAB_SHAPES=$SHAPES TESSERA_LAB_TERMS=1 timeout 60 "$L" \
  --wgmma-only --wg-from=7 > "$OUT/lab.log" 2>&1
rc=$?
echo "lab rc=$rc $(date +%T) checks ok: $(grep -c ' ok$' "$OUT/lab.log") FAILED: $(grep -c FAILED "$OUT/lab.log")"
grep -E "FAILED|differ|summary|zero_checks|cluster_slots" "$OUT/lab.log" | head -20
# A failed check or a hang (rc 124) ends the call: nothing else is worth the device time.
[ $rc != 0 ] && tail -5 "$OUT/lab.log" && echo "done $(($(date +%s) - T0)) s (lab failed)" && exit 1
timeout 90 "$L" --wgmma-only --wg-from=99 --default-only > "$OUT/default.log" 2>&1
echo "default (WIDE=4) rc=$? checks ok: $(grep -c ' ok$' "$OUT/default.log") FAILED: $(grep -c FAILED "$OUT/default.log")"
: > "$OUT/lab2.log"
for ord in ${ORDERS:-26,30,31 31,30,26 30,31,26 26,31,30 31,26,30 30,26,31}; do
  late "lab order $ord" && break
  TESSERA_LAB_ORDER=1 TESSERA_LAB_TMA=$ord TESSERA_LAB_SHAPES=$SHAPES TESSERA_LAB_TERMS=1 timeout 60 \
    "$L" --wgmma-only --wg-from=7 --no-check >> "$OUT/lab2.log" 2>&1
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
names = (("26", "tma128x256wpq"), ("30", "tma128x256wpqx"), ("31", "tma128x256wpqc"))
g = []
for (s, M), d in sorted(vals.items()):
    lt = sum(d["lt"]) / len(d["lt"])
    out, mean = "%-11s M=%-4d cublaslt %.0f (n=%d)" % (s, M, lt, len(d["lt"])), {}
    for num, k in names:
        a = d.get(k, [])
        if not a:
            continue
        mean[num] = sum(a) / len(a)
        out += "  %s %.0f (%.3f, n=%d: %s)" % (num, mean[num], mean[num] / lt, len(a),
                                               " ".join("%.0f" % x for x in a))
    if "30" in mean and "31" in mean:
        out += "  31/30 %.3f" % (mean["31"] / mean["30"])
        if (s, M) in wide:
            g.append(math.log(mean["31"] / mean["30"]))
    print(out + ("  *" if (s, M) in wide else ""))
print("# geomean 31/30 over the WideFits shapes: %.3f over %d" % (math.exp(sum(g) / len(g)) if g else 0, len(g)))
EOF
cat "$OUT/ratios.log"
v=$(grep "^# geomean" "$OUT/ratios.log" | awk '{print $8}')
if [ "${ENGINE:-1}" = 1 ] && { python3 -c "import sys; sys.exit(0 if ${v:-0} >= ${MIN:-1.01} else 1)" ||
  [ -n "${FORCE_ENGINE:-}" ]; }; then
  side_env() { echo "TESSERA_BACKEND_PATH=$G/$1"; }
  if ! late suites; then
    P=$G/new
    TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 100 \
      "$G/bin/op_conformance_test" --gtest_brief=1 > /tmp/tests.log 2>&1
    echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' /tmp/tests.log | tr '\n' ' ')"
    TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so \
      TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 100 \
      "$G/bin/text_golden_test" --gtest_brief=1 >> /tmp/tests.log 2>&1
    echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' /tmp/tests.log | tail -1)"
    { echo "=== tests (new/, default WIDE=4)"; cat /tmp/tests.log; } >> "$OUT/default.log"
  fi
  ebench() {
    local side=$1 prec=$2 ck=$3 opt=()
    [ "$prec" = bf16 ] && opt=(--backend-opt cuda.matmul_precision=bf16)
    env $(side_env $side) timeout 120 "$E" --backend cuda "${opt[@]}" \
      bench "$ck" -p 2048 -n 0 -r 3 2>&1 | grep -E "^\| (pp|tg)[0-9]|rror" | sed "s/^/    $side /"
  }
  waitck() {
    local i=0
    while [ ! -f "/tmp/$1.done" ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done
  }
  LONG=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 250))")
  {
    s=llama-3.1-8b
    waitck $s
    late "md5" || for side in old new; do
      env $(side_env $side) timeout 90 "$E" --backend cuda run /tmp/$s "t1 t2 t3 t4" \
        --raw -n 32 --temperature 0 2>/dev/null > /tmp/run_$side.txt
      env $(side_env $side) timeout 90 "$E" --backend cuda --backend-opt cuda.matmul_precision=bf16 \
        run /tmp/$s "$LONG" --raw -n 16 --temperature 0 2>/dev/null > /tmp/runb_$side.txt
      echo "  $s $side md5 exact $(md5sum < /tmp/run_$side.txt | cut -c1-12) (bytes $(wc -c < /tmp/run_$side.txt))" \
        "bf16-long $(md5sum < /tmp/runb_$side.txt | cut -c1-12) (bytes $(wc -c < /tmp/runb_$side.txt))"
    done
    echo "--- $s pp2048 bf16 $(date +%T)"
    for r in 1 2 3; do
      late "8B bf16 round $r" && break
      for side in old new; do ebench $side bf16 "/tmp/$s"; done
    done
    waitck llama-3.2-1b
    echo "--- llama-3.2-1b pp2048 bf16 $(date +%T)"
    for r in 1 2; do
      late "1B bf16 round $r" && break
      for side in old new; do ebench $side bf16 /tmp/llama-3.2-1b; done
    done
    late "8B exact" || {
      echo "--- $s pp2048 exact $(date +%T)"
      for side in old new; do ebench $side exact "/tmp/$s"; done
    }
  } 2>&1 | tee "$OUT/engine.log"
fi
# Dummy wgmmas (HGMMA.64x8x16, cu-gemm17) and all HGMMAs of 30 (MODE 11) / 31 (12); registers.
cuobjdump -sass "$L" 2>/dev/null |
  awk '/Function : /{f=$3} /HGMMA.64x8x16/{c[f]++} /HGMMA/{h[f]++} END{for(k in h) print c[k]+0, h[k], k}' |
  grep -E "GemmTmaKernel.*Li256ELb0ELi3ELi[12]ELb0ELb0ELb0ELb0ELi0ELb1ELi1[12]E" | cut -c1-160 |
  sed 's/^/sass dummy, all HGMMA: /'
cuobjdump -res-usage "$L" 2>/dev/null | grep -A1 -E "Li256ELb0ELi3ELi[12]ELb0ELb0ELb0ELb0ELi0ELb1ELi1[12]E" |
  grep -oE "REG:[0-9]+|STACK:[0-9]+|SHARED:[0-9]+|LOCAL:[0-9]+" | paste -sd' ' | sed 's/^/res-usage (30, 31 in file order): /'
# ncu only if the call is young enough (it costs ~12 s a configuration).
if [ "${NCU:-1}" = 1 ] && [ $(($(date +%s) - T0)) -lt "${PROF_BY:-120}" ]; then
  mkdir -p /tmp/prof
  for c in 30 31; do
    late "ncu $c" && break
    # The default dispatch's 53 launches come first (3 warm-up + 5 x 10), then the config's.
    TESSERA_LAB_TMA=$c TESSERA_LAB_SHAPES=8B.gate_up TESSERA_LAB_TERMS=1 timeout 50 \
      ncu --clock-control none -k regex:GemmTmaKernel --launch-skip 58 --launch-count 1 \
      --section WarpStateStats --section SourceCounters --section MemoryWorkloadAnalysis \
      --section SpeedOfLight --section LaunchStats \
      -o /tmp/prof/n$c "$L" --wgmma-only --wg-from=7 --no-check > /tmp/prof/n$c.run.log 2>&1
    echo "ncu $c rc=$? $(date +%T)"
    ncu -i /tmp/prof/n$c.ncu-rep --page details > /tmp/prof/n$c.details.txt 2>&1
    ncu -i /tmp/prof/n$c.ncu-rep --page source --csv --print-source sass > /tmp/prof/n$c.source.csv 2>&1
    grep -E "TCfg|Duration|SM Frequency|L2 Cache Throughput|DRAM Throughput|Memory Throughput|Compute \(SM\) Throughput|Cluster Size|Grid Size" \
      /tmp/prof/n$c.details.txt | cut -c1-150 | head -12
  done
  rm -f /tmp/prof/*.ncu-rep
  tar czf "$OUT/prof.tar.gz" -C /tmp prof
fi
echo "done $(($(date +%s) - T0)) s"
