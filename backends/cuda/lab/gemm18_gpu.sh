#!/bin/bash
# cu-gemm18's GPU call (eighteenth session; lab/NOTES.md "Prefill GEMM, eighteenth session"), from
# the repo root: `[VAR=...] DEADLINE=N bash .dev/cu-gemm18/g/gemm18_gpu.sh`, carrying
# .dev/cu-gemm18/g18.tar.xz (folder "g": bin/engine + lib/ = HEAD 0a00b9a's engine and core
# (.dev/old18) with the libraries of cu-gemm17's bundle, no plugins; old/ = HEAD's CUDA + CPU
# plugins; new/ = this tree's CUDA plugin + HEAD's CPU plugin; cuda_gemm_lab, op_conformance_test
# and text_golden_test; this script). Each side's plugins are picked with TESSERA_BACKEND_PATH=DIR.
# No step starts past $DEADLINE s; logs in $OUT.
#   1. cuda_gemm_lab --wgmma-only --wg-from=7 with TESSERA_LAB_TMA=$CHK: GEMV-vs-GEMM bit checks
#      (those configurations, the default dispatch, the zero checks: K = 1056 has an odd number of
#      k32 blocks, i.e. a 32-k stage past K), timings of $CHK on $SHAPES, one piece  -> lab.log
#      the default dispatch's checks with TESSERA_CUDA_GEMM_WIDE=3 TESSERA_CUDA_GEMM_PQU=2
#                                                                                -> default.log
#      then timing passes (--no-check): pass 2 in the reverse order of $CHK (TESSERA_LAB_ORDER=1),
#      pass 3 in number order                                               -> lab2.log, lab3.log
#      and per configuration the geometric mean over the 8B shapes / tma128x256wpq (26) and over
#      the shapes the default runs 27 on / tma128x128pqu (27)
#   (at most 8 files back: console.log from the call's tee, lab, lab2, lab3, default (+ the nx
#   checks and the suites), ratios, engine, prof.tar.gz)
#   2. side nx: TESSERA_CUDA_GEMM_WIDE = 3 / 4 / 5 for the best of 30 / 32 / 33 if it beats 26 by
#      >= 2% on the shapes WideFits takes (8B q_o, gate_up, down at 2048, gate_up at 512), else 2;
#      TESSERA_CUDA_GEMM_PQU=2 if 31 beats 27 by >= 2% on the shapes 27 runs, else 1;
#      TESSERA_CUDA_GEMM_WIDE1B=1 if the chosen 128 x 256 tile beats the chosen 128 x 128 one by
#      >= 5% on the 1B q_o, gate_up, down at M = 2048 (cu-gemm17b's rule), else 0. Nothing
#      chosen: no engine runs. Else the default checks with the chosen knobs, CUDA op conformance
#      + text golden on the new plugin with them, greedy md5 old / nx (8B bf16 mode with a
#      ~2k-token prompt, 8B / 1B exact, 1B bf16), then
#   3. engine pp2048 (`engine --backend cuda [--backend-opt cuda.matmul_precision=bf16] bench
#      CKPT -p 2048 -n 0 -r 3`) on $MODELS, sides old / nx interleaved            -> engine.log
#   4. ncu of $NCU on 8B q_o at M = 2048 (if time is left)                       -> prof.tar.gz
# Call 1 (22:17 UTC) ran the experimental tree (results/gemm18/experiments.patch: configurations
# 30 tma128x256wpq6 = 26 on 6 stages of 32 k's, 31 tma128x128pqu7 = 27 on 7 stages, 32 / 33
# tma128x256wpq6l1 / l2 = 30 with the consumers 1 / 2 blocks apart, 34 = the final tree's 30;
# knobs TESSERA_CUDA_GEMM_WIDE=3 .. 6, TESSERA_CUDA_GEMM_PQU=2, TESSERA_CUDA_GEMM_WIDE1B=1); none
# of 30 .. 33 is in the final tree, so this script needs that patch to run again.
set -u
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
T0=$(date +%s)
DEADLINE=${DEADLINE:-400}
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
MODELS=${MODELS:-llama-3.1-8b llama-3.2-1b}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
make_checkpoints $MODELS
find_cublaslt
echo "cublaslt: $TESSERA_CUBLASLT"
waitck() {
  local i=0
  while [ ! -f "/tmp/$1.done" ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
}
CHK=${CHK:-26,30,32,33,27,31}
REV=$(echo "$CHK" | tr ',' '\n' | tac | paste -sd,)
SHAPES=${SHAPES:-8B.q_o,8B.gate_up,8B.down,1B.q_o,1B.gate_up,1B.down}
echo "=== lab checks TESSERA_LAB_TMA=$CHK $(date +%T)"
TESSERA_LAB_TMA=$CHK TESSERA_LAB_SHAPES=$SHAPES TESSERA_LAB_TERMS=1 timeout 200 "$G/cuda_gemm_lab" \
  --wgmma-only --wg-from=7 > "$OUT/lab.log" 2>&1
echo "lab rc=$? $(date +%T) checks ok: $(grep -c ' ok$' "$OUT/lab.log") FAILED: $(grep -c FAILED "$OUT/lab.log")"
grep -E "FAILED|differ|summary|^device|zero_checks" "$OUT/lab.log" | head -20
TESSERA_CUDA_GEMM_WIDE=3 TESSERA_CUDA_GEMM_PQU=2 timeout 90 "$G/cuda_gemm_lab" --wgmma-only \
  --wg-from=99 --default-only > "$OUT/default.log" 2>&1
echo "default (WIDE=3 PQU=2) rc=$? checks ok: $(grep -c ' ok$' "$OUT/default.log") FAILED: $(grep -c FAILED "$OUT/default.log")"
late "lab pass 2" || {
  TESSERA_LAB_ORDER=1 TESSERA_LAB_TMA=$REV TESSERA_LAB_SHAPES=$SHAPES TESSERA_LAB_TERMS=1 timeout 90 \
    "$G/cuda_gemm_lab" --wgmma-only --wg-from=7 --no-check > "$OUT/lab2.log" 2>&1
  echo "lab pass 2 (order $REV) rc=$? $(date +%T)"
}
late "lab pass 3" || {
  TESSERA_LAB_TMA=$CHK TESSERA_LAB_SHAPES=$SHAPES TESSERA_LAB_TERMS=1 timeout 90 \
    "$G/cuda_gemm_lab" --wgmma-only --wg-from=7 --no-check > "$OUT/lab3.log" 2>&1
  echo "lab pass 3 rc=$? $(date +%T)"
}
# Per shape and pass: TFLOP/s (fraction of cuBLASLt); geometric means of each configuration over
# the WideFits shapes / 26 and over the shapes 27 runs / 27.
python3 - "$OUT" > "$OUT/ratios.log" <<'EOF'
import glob, math, re, sys
rows = {}
for f in sorted(glob.glob(sys.argv[1] + "/lab*.log")):
    for l in open(f):
        m = re.match(r"gemm (\S+) M=(\d+) .* terms=1 .*cublaslt_TFLOP/s=([\d.]+)", l)
        if not m:
            continue
        v = dict(re.findall(r" (tma\S+?)=([\d.]+)", l))
        a = re.search(r" auto=(\S+)", l)
        rows.setdefault((m.group(1), int(m.group(2))), []).append(
            (float(m.group(3)), v, f[-8:], a.group(1) if a else "-"))
wide = {("8B.q_o", 2048), ("8B.gate_up", 2048), ("8B.down", 2048), ("8B.gate_up", 512)}
g = {}
for (s, M), passes in sorted(rows.items()):
    for lt, v, f, auto in passes:
        print("%-11s M=%-4d %s cublaslt %.0f " % (s, M, f, lt) +
              " ".join("%s=%.0f(%.2f)" % (k, float(x), float(x) / lt) for k, x in v.items()))
        if s.startswith("1B") and M == 2048 and s != "1B.k_v":  # WIDE1B's shapes
            for k, x in v.items():
                for r in ("tma128x128pqu", "tma128x128pqu7"):
                    if r in v:
                        g.setdefault(("1B " + r, k), []).append(math.log(float(x) / float(v[r])))
        # The default's tile: 26 where WideFits, 27 where the auto choice is the 128 x 128 tile.
        ref = "tma128x256wpq" if (s, M) in wide else "tma128x128pqu"
        if (s, M) not in wide and auto != "tma128x128p":
            continue
        for k, x in v.items():
            if ref in v:
                g.setdefault((ref, k), []).append(math.log(float(x) / float(v[ref])))
for (ref, k), l in sorted(g.items()):
    if ref.startswith("1B "):
        print("#1B geomean %s / %s: %.3f over %d" % (k, ref[3:], math.exp(sum(l) / len(l)), len(l)))
    else:
        print("# geomean %s / %s: %.3f over %d" % (k, ref, math.exp(sum(l) / len(l)), len(l)))
EOF
grep "^#" "$OUT/ratios.log"
gm() {  # gm CAND REF [PREFIX]: the geometric mean line's value (empty if none)
  grep "^${3:-#} geomean $1 / $2:" "$OUT/ratios.log" | awk '{print $6}' | head -1
}
ge() { [ -n "$1" ] && python3 -c "import sys; sys.exit(0 if $1 >= $2 else 1)"; }
best=2 bestv=1.02
for c in "3 tma128x256wpq6" "4 tma128x256wpq6l1" "5 tma128x256wpq6l2"; do
  set -- $c
  v=$(gm "$2" tma128x256wpq)
  ge "$v" "$bestv" && best=$1 bestv=$v
done
WX=${WX:-$best}
PQU=${PQU:-$(ge "$(gm tma128x128pqu7 tma128x128pqu)" 1.02 && echo 2 || echo 1)}
# WIDE1B=1 if the chosen 128 x 256 tile beats the chosen 128 x 128 one by >= 5% on the 1B shapes.
WT=$(case $WX in 3) echo tma128x256wpq6 ;; 4) echo tma128x256wpq6l1 ;; 5) echo tma128x256wpq6l2 ;; *) echo tma128x256wpq ;; esac)
QT=$([ "$PQU" = 2 ] && echo tma128x128pqu7 || echo tma128x128pqu)
W1B=${W1B:-$(ge "$(gm $WT $QT '#1B')" 1.05 && echo 1 || echo 0)}
echo "chosen TESSERA_CUDA_GEMM_WIDE=$WX TESSERA_CUDA_GEMM_PQU=$PQU TESSERA_CUDA_GEMM_WIDE1B=$W1B for side nx"
side_env() {
  case $1 in
    old) echo "TESSERA_BACKEND_PATH=$G/old" ;;
    new) echo "TESSERA_BACKEND_PATH=$G/new" ;;
    nx) echo "TESSERA_BACKEND_PATH=$G/new TESSERA_CUDA_GEMM_WIDE=$WX TESSERA_CUDA_GEMM_PQU=$PQU TESSERA_CUDA_GEMM_WIDE1B=$W1B" ;;
  esac
}
if [ "$WX$PQU$W1B" != 210 ] || [ -n "${FORCE_ENGINE:-}" ]; then
  if [ "$WX$PQU" != 32 ]; then
    TESSERA_CUDA_GEMM_WIDE=$WX TESSERA_CUDA_GEMM_PQU=$PQU TESSERA_CUDA_GEMM_WIDE1B=$W1B timeout 90 "$G/cuda_gemm_lab" --wgmma-only \
      --wg-from=99 --default-only > /tmp/default_nx.log 2>&1
    echo "default (nx) rc=$? checks ok: $(grep -c ' ok$' /tmp/default_nx.log) FAILED: $(grep -c FAILED /tmp/default_nx.log)"
    { echo "=== nx: WIDE=$WX PQU=$PQU WIDE1B=$W1B"; cat /tmp/default_nx.log; } >> "$OUT/default.log"
  fi
  if ! late suites; then
    P=$G/new
    env $(side_env nx) TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 120 \
      "$G/op_conformance_test" --gtest_brief=1 > /tmp/tests.log 2>&1
    echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' /tmp/tests.log | tr '\n' ' ')"
    env $(side_env nx) TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so \
      TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 120 \
      "$G/text_golden_test" --gtest_brief=1 >> /tmp/tests.log 2>&1
    echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' /tmp/tests.log | tail -1)"
    { echo "=== tests (nx)"; cat /tmp/tests.log; } >> "$OUT/default.log"
  fi
  ebench() {
    local side=$1 prec=$2 ck=$3 opt=()
    [ "$prec" = bf16 ] && opt=(--backend-opt cuda.matmul_precision=bf16)
    env $(side_env $side) timeout 150 "$E" --backend cuda "${opt[@]}" \
      bench "$ck" -p 2048 -n 0 -r 3 2>&1 | grep -E "^\| (pp|tg)[0-9]|rror" | sed "s/^/    $side /"
  }
  LONG=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 250))")
  {
    for s in $MODELS; do
      waitck $s
      late "md5 $s" || for side in old nx; do
        env $(side_env $side) timeout 90 "$E" --backend cuda run /tmp/$s "t1 t2 t3 t4" \
          --raw -n 32 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
        env $(side_env $side) timeout 90 "$E" --backend cuda --backend-opt cuda.matmul_precision=bf16 \
          run /tmp/$s "$LONG" --raw -n 16 --temperature 0 2>/tmp/runb_${s}_$side.err > /tmp/runb_${s}_$side.txt
        echo "  $s $side md5 exact $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) (bytes $(wc -c < /tmp/run_${s}_$side.txt))" \
          "bf16-long $(md5sum < /tmp/runb_${s}_$side.txt | cut -c1-12) (bytes $(wc -c < /tmp/runb_${s}_$side.txt))"
      done
      late "engine $s bf16" && break
      echo "--- $s pp2048 bf16 $(date +%T)"
      sides=${SIDES:-old nx old nx old nx}
      [ $s != llama-3.1-8b ] && sides=${SIDES_SHORT:-old nx old nx}
      for side in $sides; do ebench $side bf16 "/tmp/$s"; done
    done
    for s in $MODELS; do
      late "engine $s exact" && break
      echo "--- $s pp2048 exact $(date +%T)"
      for side in old nx; do ebench $side exact "/tmp/$s"; done
    done
  } 2>&1 | tee "$OUT/engine.log"
fi
# 4. ncu of the 128 x 256 tiles on 8B q_o at M = 2048
if ! late prof; then
  mkdir -p /tmp/prof
  for c in ${NCU:-26 30}; do
    late "ncu $c" && break
    # The default dispatch's 15 launches come first (5 warm-up + 10), then the config's 5 + 10.
    TESSERA_LAB_TMA=$c TESSERA_LAB_SHAPES=8B.q_o TESSERA_LAB_TERMS=1 timeout 60 \
      ncu --clock-control none -k regex:GemmTmaKernel --launch-skip 20 --launch-count 1 \
      --section WarpStateStats --section SchedulerStats --section SourceCounters \
      --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section SpeedOfLight \
      -o /tmp/prof/n$c "$G/cuda_gemm_lab" --wgmma-only --wg-from=7 --no-check > /tmp/prof/n$c.run.log 2>&1
    echo "ncu $c rc=$? $(date +%T)"
    ncu -i /tmp/prof/n$c.ncu-rep --page details > /tmp/prof/n$c.details.txt 2>&1
    ncu -i /tmp/prof/n$c.ncu-rep --page source --csv --print-source sass > /tmp/prof/n$c.source.csv 2>&1
    grep -E "Duration|Warp Cycles Per Issued|Issued Warp Per|No Eligible|L2 Cache Throughput|DRAM Throughput|Compute \(SM\) Throughput" \
      /tmp/prof/n$c.details.txt | head -12
  done
  rm -f /tmp/prof/*.ncu-rep
  tar czf "$OUT/prof.tar.gz" -C /tmp prof
fi
echo "done $(($(date +%s) - T0)) s"
