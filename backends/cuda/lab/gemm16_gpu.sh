#!/bin/bash
# cu-gemm16's GPU calls (sixteenth session; lab/NOTES.md "Prefill GEMM, sixteenth session"), from
# the repo root: `[VAR=...] DEADLINE=N bash backends/cuda/lab/gemm16_gpu.sh`, carrying
# .dev/cu-gemm16/g16.tar.xz (folder "g": bin/engine + lib/ = the lead's bundle without its CUDA
# plugin and test binaries; old/ = HEAD fee64b5's CUDA + CPU plugins from .dev/old16.tar.xz; new/
# = this tree's CUDA plugin + HEAD's CPU plugin; cuda_gemm_lab built from this tree). Each side's
# plugins are picked with TESSERA_BACKEND_PATH=DIR (searched first). No step starts past
# $DEADLINE s; logs in $OUT.
#   1. cuda_gemm_lab --wgmma-only --wg-from=7 with TESSERA_LAB_TMA=$CFGS: GEMV-vs-GEMM bit checks
#      (those TMA configurations, the default dispatch, the zero checks) and the timings at
#      M = 2048 and 512 next to cuBLASLt (torch's libcublasLt)                   -> lab.log
#      then LAB_REPS - 1 more timing passes (--no-check)                          -> lab2.log ...
#   2. the best variant per piece count (geometric mean over the big M = 2048 shapes vs the
#      default persistent tile), unless PQ1 / PQ3 are given; the default dispatch's bit checks
#      with it (TESSERA_CUDA_GEMM_PQ1 / _PQ3)                                      -> default.log
#   3. engine pp2048 (`engine --backend cuda [--backend-opt cuda.matmul_precision=bf16] bench
#      CKPT -p 2048 -n 0 -r 3`) on $MODELS, sides $SIDES in turn: old = HEAD's plugin, new = this
#      one (default), nv = this one with the chosen variants (TESSERA_CUDA_GEMM_PQ1 / _PQ3), nw =
#      this one with TESSERA_CUDA_GEMM_WIDE=0                                      -> engine.log
# Call 1 (17:50 UTC): defaults. Call 2: CFGS=18,26,27,29,30 PQ1=-1 PQ3=-1
#   MODELS="llama-3.1-8b llama-3.2-1b" SIDES="old new nw new old" (the 128 x 256 tile).
# Call 3: CFGS=18,29,30,31,32,33 PQ1=-1 PQ3=-1 SIDES="old new nv nw old new nv nw"
#   SIDES_EXACT="old new old new" (WIDE: the best 128 x 256 variant, side nv).
# Calls 1-3 ran the experimental tree of results/gemm16/experiments.patch (its configurations
# 22 .. 33 and knobs TESSERA_CUDA_GEMM_PQ1 / _PQ3, TESSERA_CUDA_GEMM_WIDE=29 / 31 / 32 / 33). With
# the final tree: CFGS=18,22,23,24,25 PQ1=-1 PQ3=-1 WIDE=0 SIDES="old new nw new old" (nv = nw).
set -u
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
T0=$(date +%s)
DEADLINE=${DEADLINE:-170}
late() {
  [ $(($(date +%s) - T0)) -gt "$DEADLINE" ] && echo "deadline: skipping $1" && return 0
  return 1
}
D=.dev/cu-gemm16
[ -d $D/g ] || tar -xJf $D/g16.tar.xz -C $D || exit 1
G=$PWD/$D/g
export LD_LIBRARY_PATH=$G/lib
E=$G/bin/engine
. backends/cuda/lab/lab_common.sh  # find_cublaslt, make_checkpoints
MODELS=${MODELS:-llama-3.1-8b}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
make_checkpoints $MODELS
find_cublaslt
echo "cublaslt: $TESSERA_CUBLASLT"
waitck() {
  local i=0
  while [ ! -f "/tmp/$1.done" ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
}
CFGS=${CFGS:-18,21,22,23,24,25,26,27,28}
LAB_REPS=${LAB_REPS:-2}
echo "=== lab TESSERA_LAB_TMA=$CFGS $(date +%T)"
TESSERA_LAB_TMA=$CFGS timeout 150 "$G/cuda_gemm_lab" --wgmma-only --wg-from=7 > "$OUT/lab.log" 2>&1
echo "lab rc=$? $(date +%T) checks ok: $(grep -c ' ok$' "$OUT/lab.log") FAILED: $(grep -c FAILED "$OUT/lab.log")"
grep -E "FAILED|differ|summary|^device|zero_checks" "$OUT/lab.log" | head -20
for r in $(seq 2 "$LAB_REPS"); do
  late "lab pass $r" && break
  TESSERA_LAB_TMA=$CFGS timeout 90 "$G/cuda_gemm_lab" --wgmma-only --wg-from=7 --no-check \
    > "$OUT/lab$r.log" 2>&1
  echo "lab pass $r rc=$? $(date +%T)"
done
# best NAME per piece count: geometric mean over the big shapes at M = 2048 of variant / default.
pick() {
  python3 - "$@" <<'EOF'
import math, re, sys, glob
terms, base, cands = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
import os
big = set(os.environ.get("BIG", "8B.q_o 8B.k_v 8B.gate_up 8B.down 1B.q_o 1B.gate_up 1B.down "
                                "0.5B.gate_up 0.5B.down").split())
logs = sorted(glob.glob(sys.argv[4] + "/lab*.log"))
score = {c: [] for c in cands}
for f in logs:
    for l in open(f):
        m = re.match(r"gemm (\S+) M=2048 .* terms=(\d) ", l)
        if not m or m.group(1) not in big or m.group(2) != terms:
            continue
        v = dict(re.findall(r" (tma\S+?)=([\d.]+)", l))
        if base not in v:
            continue
        for c in cands:
            if c in v:
                score[c].append(math.log(float(v[c]) / float(v[base])))
best, bs = "", 1.0
for c in cands:
    if score[c]:
        g = math.exp(sum(score[c]) / len(score[c]))
        print("# terms=%s %s / %s: %.3f over %d" % (terms, c, base, g, len(score[c])), file=sys.stderr)
        if g > bs:
            best, bs = c, g
print(best)
EOF
}
num1() { case $1 in tma128x128psq) echo 22 ;; tma128x128pfq) echo 23 ;; tma128x128pf2q) echo 24 ;;
  tma128x128pfsq) echo 25 ;; *) echo -1 ;; esac; }
num3() { case $1 in tma128x128sq) echo 22 ;; tma128x128pfq) echo 23 ;; tma128x128pf2q) echo 24 ;;
  tma128x128pfsq) echo 25 ;; tma128x128psq) echo 28 ;; tma128x128pq) echo 21 ;; *) echo -1 ;; esac; }
if [ -z "${PQ1:-}" ]; then  # from the lab: the best variant if any beats the default
  PQ1=$(num1 "$(pick 1 tma128x128pq tma128x128psq,tma128x128pfq,tma128x128pf2q,tma128x128pfsq "$OUT")")
fi
if [ -z "${PQ3:-}" ]; then
  PQ3=$(num3 "$(pick 3 tma128x128q tma128x128sq,tma128x128pfq,tma128x128pf2q,tma128x128pfsq,tma128x128psq,tma128x128pq "$OUT")")
fi
# The 128 x 256 variant for TESSERA_CUDA_GEMM_WIDE (side nv) over the shapes it runs on.
if [ -z "${WIDE:-}" ]; then
  case $(BIG="8B.q_o 8B.gate_up 8B.down 1B.q_o 1B.gate_up 1B.down" pick 1 tma128x128pq \
    tma128x256wq,tma128x256wsq,tma128x256wzq,tma128x256wzsq "$OUT") in
    tma128x256wq) WIDE=29 ;; tma128x256wsq) WIDE=31 ;; tma128x256wzq) WIDE=32 ;;
    tma128x256wzsq) WIDE=33 ;; *) WIDE=0 ;;
  esac
fi
echo "chosen PQ1=$PQ1 PQ3=$PQ3 WIDE=$WIDE"
if ! late default; then
  echo "=== default dispatch checks with PQ1=$PQ1 PQ3=$PQ3 $(date +%T)"
  TESSERA_CUDA_GEMM_PQ1=$PQ1 TESSERA_CUDA_GEMM_PQ3=$PQ3 TESSERA_CUDA_GEMM_WIDE=$WIDE \
    timeout 60 "$G/cuda_gemm_lab" \
    --wgmma-only --wg-from=99 --default-only > "$OUT/default.log" 2>&1
  echo "default rc=$? checks ok: $(grep -c ' ok$' "$OUT/default.log") FAILED: $(grep -c FAILED "$OUT/default.log")"
fi

# ebench SIDE PREC CKPT: engine pp2048 with SIDE's plugins ("nv": new with the chosen variants).
ebench() {
  local side=$1 prec=$2 ck=$3 dir=$1 opt=()
  local env=(TESSERA_CUDA_GEMM_PQ1=-1 TESSERA_CUDA_GEMM_PQ3=-1)
  [ "$side" = nv ] && dir=new &&
    env=(TESSERA_CUDA_GEMM_PQ1=$PQ1 TESSERA_CUDA_GEMM_PQ3=$PQ3 TESSERA_CUDA_GEMM_WIDE=$WIDE)
  [ "$side" = nw ] && dir=new && env=(TESSERA_CUDA_GEMM_WIDE=0)
  [ "$prec" = bf16 ] && opt=(--backend-opt cuda.matmul_precision=bf16)
  env "${env[@]}" TESSERA_BACKEND_PATH=$G/$dir timeout 150 "$E" --backend cuda "${opt[@]}" \
    bench "$ck" -p 2048 -n 0 -r 3 2>&1 | grep -E "^\| (pp|tg)[0-9]|rror" | sed "s/^/    $side /"
}
SIDES=${SIDES:-old nv old nv}
{
  for s in $MODELS; do
    waitck $s
    for prec in bf16 exact; do
      late "engine $s $prec" && break 2
      echo "--- $s pp2048 $prec $(date +%T)"
      sides=$SIDES
      [ $prec = exact ] && sides=${SIDES_EXACT:-$SIDES}
      for side in $sides; do ebench $side $prec "/tmp/$s"; done
    done
  done
} 2>&1 | tee "$OUT/engine.log"
echo "done $(($(date +%s) - T0)) s"
