#!/bin/bash
# cu-gemm17's GPU calls (seventeenth session; lab/NOTES.md "Prefill GEMM, seventeenth session"),
# from the repo root: `[VAR=...] DEADLINE=N bash .dev/cu-gemm17/g/gemm17_gpu.sh`, carrying
# .dev/cu-gemm17/g17.tar.xz (folder "g": bin/engine + lib/ = HEAD c4c4067's engine
# (.dev/old17.tar.xz) with the lead's bundle's libraries, no plugins; old/ = HEAD's CUDA + CPU
# plugins; new/ = this tree's CUDA plugin + HEAD's CPU plugin; cuda_gemm_lab, op_conformance_test
# and text_golden_test; this script). Each side's plugins are picked with TESSERA_BACKEND_PATH=DIR.
# No step starts past $DEADLINE s; logs in $OUT.
#   1. cuda_gemm_lab --wgmma-only --wg-from=7 with TESSERA_LAB_TMA=$CHK: GEMV-vs-GEMM bit checks
#      (those configurations, the default dispatch, the zero checks), timings of $CHK on $SHAPES,
#      one piece                                                                 -> lab.log
#      the default dispatch's checks again with TESSERA_CUDA_GEMM_WIDE=2 TESSERA_CUDA_GEMM_PQU=1
#                                                                                -> default.log
#      then LAB_REPS - 1 timing passes of $CFGS (--no-check)                      -> lab2.log ...
#      and per configuration the geometric mean over the 8B shapes / tma128x256wq
#   2. SASS of the 128 x 256 kernels (cuobjdump) and ncu (warp states, scheduler, source
#      counters) of configurations $NCU on 8B q_o at M = 2048                      -> prof.tar.gz
#   3. the side nx: TESSERA_CUDA_GEMM_WIDE=2 if tma128x256wpq beats tma128x256wq by >= 2% on the
#      8B shapes (else 1), TESSERA_CUDA_GEMM_PQU=1 if tma128x128pqu beats tma128x128pq by >= 2% on
#      the 1B shapes (else 0); CUDA op conformance + text golden on the new plugin with them;
#      greedy md5 old / nx (8B bf16 with a ~2k-token prompt, 8B / 1B exact)
#   4. engine pp2048 (`engine --backend cuda [--backend-opt cuda.matmul_precision=bf16] bench
#      CKPT -p 2048 -n 0 -r 3`) on $MODELS, sides in turn: old = HEAD's plugin, new = this one
#      (defaults: HEAD's kernels), nx                                              -> engine.log
# Calls 1 (19:50 UTC) and 2 (20:03 UTC) ran the experimental tree (results/gemm17/
# experiments.patch: its configurations 26 .. 32, side "w$WX" = TESSERA_CUDA_GEMM_WIDE=$WX); the
# final tree's configurations 26 / 27 (no dummy wgmma) have not run on a GPU yet: the next call
# is this script with its defaults.
set -u
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
T0=$(date +%s)
DEADLINE=${DEADLINE:-400}
late() {
  [ $(($(date +%s) - T0)) -gt "$DEADLINE" ] && echo "deadline: skipping $1" && return 0
  return 1
}
D=$PWD/.dev/cu-gemm17
[ -d $D/g/bin ] || tar -xJf $D/g17.tar.xz -C $D || exit 1
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
CHK=${CHK:-22,23,26,27}
CFGS=${CFGS:-18,27,22,26,25,28,29}
SHAPES=${SHAPES:-8B.q_o,8B.gate_up,8B.down,1B.q_o,1B.gate_up,1B.down}
LAB_REPS=${LAB_REPS:-3}
echo "=== lab checks TESSERA_LAB_TMA=$CHK $(date +%T)"
TESSERA_LAB_TMA=$CHK TESSERA_LAB_SHAPES=$SHAPES TESSERA_LAB_TERMS=1 timeout 150 "$G/cuda_gemm_lab" \
  --wgmma-only --wg-from=7 > "$OUT/lab.log" 2>&1
echo "lab rc=$? $(date +%T) checks ok: $(grep -c ' ok$' "$OUT/lab.log") FAILED: $(grep -c FAILED "$OUT/lab.log")"
grep -E "FAILED|differ|summary|^device|zero_checks" "$OUT/lab.log" | head -20
TESSERA_CUDA_GEMM_WIDE=2 TESSERA_CUDA_GEMM_PQU=1 timeout 90 "$G/cuda_gemm_lab" --wgmma-only \
  --wg-from=99 --default-only > "$OUT/default.log" 2>&1
echo "default (WIDE=2 PQU=1) rc=$? checks ok: $(grep -c ' ok$' "$OUT/default.log") FAILED: $(grep -c FAILED "$OUT/default.log")"
for r in $(seq 2 "$LAB_REPS"); do
  late "lab pass $r" && break
  TESSERA_LAB_TMA=$CFGS TESSERA_LAB_SHAPES=$SHAPES TESSERA_LAB_TERMS=1 timeout 90 \
    "$G/cuda_gemm_lab" --wgmma-only --wg-from=7 --no-check > "$OUT/lab$r.log" 2>&1
  echo "lab pass $r rc=$? $(date +%T)"
done
# Ratios per shape: variant / tma128x256wq, each pass.
python3 - "$OUT" <<'EOF'
import glob, math, re, sys
rows = {}
for f in sorted(glob.glob(sys.argv[1] + "/lab*.log")):
    for l in open(f):
        m = re.match(r"gemm (\S+) M=(\d+) .* terms=1 .*cublaslt_TFLOP/s=([\d.]+)", l)
        if not m:
            continue
        v = dict(re.findall(r" (tma\S+?)=([\d.]+)", l))
        rows.setdefault((m.group(1), m.group(2)), []).append((float(m.group(3)), v))
logs = {}
for (s, M), passes in sorted(rows.items()):
    for lt, v in passes:
        print("%-12s M=%s cublaslt %.0f " % (s, M, lt) +
              " ".join("%s=%.0f(%.2f)" % (k, float(x), float(x) / lt) for k, x in v.items()))
        if "tma128x256wq" in v:
            for k, x in v.items():
                if s.startswith("8B"):
                    logs.setdefault(k, []).append(math.log(float(x) / float(v["tma128x256wq"])))
for k, l in logs.items():
    print("# 8B geomean %s / tma128x256wq: %.3f over %d" % (k, math.exp(sum(l) / len(l)), len(l)))
EOF
# 2. SASS and ncu
if ! late prof; then
  mkdir -p /tmp/prof
  cuobjdump -sass "$G/cuda_gemm_lab" 2>/dev/null | awk '/Function : /{keep = ($0 ~ /GemmTmaKernel/ && $0 ~ /Li256ELb0ELi[34]E/)} keep' \
    > /tmp/prof/sass.txt
  echo "sass lines $(wc -l < /tmp/prof/sass.txt)"
  for c in ${NCU:-22 26 27}; do
    late "ncu $c" && break
    # The default dispatch's 53 launches come first (3 warm-up + 5 x 10), then the config's.
    TESSERA_LAB_TMA=$c TESSERA_LAB_SHAPES=8B.q_o TESSERA_LAB_TERMS=1 timeout 90 \
      ncu --clock-control none -k regex:GemmTmaKernel --launch-skip 58 --launch-count 1 \
      --section WarpStateStats --section SchedulerStats --section SourceCounters \
      --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section SpeedOfLight \
      -o /tmp/prof/n$c "$G/cuda_gemm_lab" --wgmma-only --wg-from=7 --no-check > /tmp/prof/n$c.run.log 2>&1
    echo "ncu $c rc=$? $(date +%T)"
    ncu -i /tmp/prof/n$c.ncu-rep --page details > /tmp/prof/n$c.details.txt 2>&1
    ncu -i /tmp/prof/n$c.ncu-rep --page source --csv --print-source sass > /tmp/prof/n$c.source.csv 2>&1
    grep -E "Duration|Warp Cycles Per Issued|Issued Warp Per|No Eligible|Stall|Throughput" \
      /tmp/prof/n$c.details.txt | head -30
  done
  rm -f /tmp/prof/*.ncu-rep
  tar czf "$OUT/prof.tar.gz" -C /tmp prof
fi
# 3. the mode for side wX, suites with it, greedy md5
pick() {  # pick REF CAND PREFIX: 1 if CAND / REF >= 1.02 (geometric mean, shapes PREFIX*, M = 2048)
  python3 - "$OUT" "$@" <<'EOF'
import glob, math, re, sys
out, ref, cand, pre = sys.argv[1:5]
l = []
for f in glob.glob(out + "/lab*.log"):
    for line in open(f):
        m = re.match(r"gemm (\S+) M=2048 .* terms=1 ", line)
        if not m or not m.group(1).startswith(pre):
            continue
        v = dict(re.findall(r" (tma\S+?)=([\d.]+)", line))
        if ref in v and cand in v:
            l.append(math.log(float(v[cand]) / float(v[ref])))
g = math.exp(sum(l) / len(l)) if l else 0
print("# %s / %s on %s: %.3f over %d" % (cand, ref, pre, g, len(l)), file=sys.stderr)
print(1 if g >= 1.02 else 0)
EOF
}
WX=${WX:-$([ "$(pick tma128x256wq tma128x256wpq 8B)" = 1 ] && echo 2 || echo 1)}
PQU=${PQU:-$(pick tma128x128pq tma128x128pqu 1B)}
echo "chosen TESSERA_CUDA_GEMM_WIDE=$WX TESSERA_CUDA_GEMM_PQU=$PQU for side nx"
if ! late suites; then
  P=$G/new
  TESSERA_CUDA_GEMM_WIDE=$WX TESSERA_CUDA_GEMM_PQU=$PQU TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 120 \
    "$G/op_conformance_test" --gtest_brief=1 > "$OUT/tests.log" 2>&1
  echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/tests.log" | tr '\n' ' ')"
  TESSERA_CUDA_GEMM_WIDE=$WX TESSERA_CUDA_GEMM_PQU=$PQU TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so \
    TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 120 \
    "$G/text_golden_test" --gtest_brief=1 >> "$OUT/tests.log" 2>&1
  echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/tests.log" | tail -1)"
fi
# side DIR and env: old, new (default), nx (new with the chosen knobs)
side_env() {
  case $1 in
    old) echo "TESSERA_BACKEND_PATH=$G/old" ;;
    new) echo "TESSERA_BACKEND_PATH=$G/new" ;;
    nx) echo "TESSERA_BACKEND_PATH=$G/new TESSERA_CUDA_GEMM_WIDE=$WX TESSERA_CUDA_GEMM_PQU=$PQU" ;;
  esac
}
ebench() {
  local side=$1 prec=$2 ck=$3 opt=()
  [ "$prec" = bf16 ] && opt=(--backend-opt cuda.matmul_precision=bf16)
  env $(side_env $side) timeout 150 "$E" --backend cuda "${opt[@]}" \
    bench "$ck" -p 2048 -n 0 -r 3 2>&1 | grep -E "^\| (pp|tg)[0-9]|rror" | sed "s/^/    $side /"
}
LONG=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 250))")
SIDES=${SIDES:-old nx new old nx new}
{
  for s in $MODELS; do
    waitck $s
    late "md5 $s" || for side in old nx; do
      env $(side_env $side) timeout 90 "$E" --backend cuda run /tmp/$s "t1 t2 t3 t4" \
        --raw -n 32 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
      b=-
      if [ $s = llama-3.1-8b ]; then
        env $(side_env $side) timeout 90 "$E" --backend cuda --backend-opt cuda.matmul_precision=bf16 \
          run /tmp/$s "$LONG" --raw -n 16 --temperature 0 2>/tmp/runb_${s}_$side.err > /tmp/runb_${s}_$side.txt
        b="$(md5sum < /tmp/runb_${s}_$side.txt | cut -c1-12) (bytes $(wc -c < /tmp/runb_${s}_$side.txt))"
      fi
      echo "  $s $side md5 exact $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) (bytes $(wc -c < /tmp/run_${s}_$side.txt)) bf16-long $b"
    done
    for prec in bf16 exact; do
      late "engine $s $prec" && break 2
      echo "--- $s pp2048 $prec $(date +%T)"
      sides=$SIDES
      { [ $prec = exact ] || [ $s != llama-3.1-8b ]; } && sides=${SIDES_SHORT:-old nx old nx}
      for side in $sides; do ebench $side $prec "/tmp/$s"; done
    done
  done
} 2>&1 | tee "$OUT/engine.log"
echo "done $(($(date +%s) - T0)) s"
