#!/bin/bash
# cu22-8b's first GPU call (twenty-second session, issue 5: Llama-3.1-8B batch-1 decode), from the
# repo root, carrying .dev/bundle22.tar.xz (the lead's bundle: HEAD's engine, plugins, tests, labs)
# and .dev/cu22-8b/b8.tar.xz (the stripped CUDA plugin and cuda_gemv_lab of the call-1 tree:
# results/b8_22/call1_knobs.diff applied on the session's start, every knob off by default;
# TESSERA_CUDA_GEMV_D8 and _XPQ exist only there, the final tree keeps O2 (default 1) and PBAL).
# (1) Bits of the new launch layouts (knobs, all off by default in the build that ran):
#     `cuda_gemv_lab --quick` GEMV + SWIGLU checks with TESSERA_CUDA_GEMV_O2=1 D8=1 PBAL=1 and
#     with O2=3 (every new path), greedy md5 old / new / new with the knobs.
# (2) Lab `--dec17` 8B lines per knob (two rounds).
# (3) Engine tg128 per knob (-r 1, rounds rotating), then the knobs that gained together as "new"
#     against HEAD's plugin: old new new old old new (-r 2).
# (5) Where an 8B step goes now: TESSERA_CUDA_LAB_SKIP runs (cu-small19's method; -r 1, exec
#     profile), one launch kind left out of the captured decode graph per run.
# (4) CUDA suites + graph replay on the new plugin with the knobs on.
# Run: `tar xJf .dev/cu22-8b/b8.tar.xz -C /tmp && DEADLINE=255 OUT=$OUT bash /tmp/b8/b8_22_gpu.sh`. Logs in $OUT (results/b8_22/), at most 8 files.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-255}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf /tmp/bundle /tmp/b8 && tar xJf .dev/bundle22.tar.xz -C /tmp && tar xJf .dev/cu22-8b/b8.tar.xz -C /tmp
O=/tmp/bundle; N=/tmp/newp
rm -rf $N && cp -r $O $N && cp /tmp/b8/libtessera_backend_cuda.so $N/lib/tessera/backends/ &&
  cp /tmp/b8/cuda_gemv_lab $N/bin/
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $N/lib/tessera/backends/libtessera_backend_cuda.so | cut -c1-12
LAB=$N/bin/cuda_gemv_lab
ALL="TESSERA_CUDA_GEMV_O2=1 TESSERA_CUDA_GEMV_D8=1 TESSERA_CUDA_GEMV_PBAL=1 TESSERA_CUDA_GEMV_XPQ=1"
waitck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done; }

echo "=== (1) lab GEMV + SWIGLU checks (memcmp) $(date +%T)"
for envs in "$ALL" "TESSERA_CUDA_GEMV_O2=3"; do
  env $envs LD_LIBRARY_PATH=$N/lib GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 90 $LAB --quick > /tmp/lab_checks.log 2>&1
  echo "[$envs] rc=$? shapes $(grep -c '^checked' /tmp/lab_checks.log); same-bits lines $(grep -c 'same bits' /tmp/lab_checks.log)"
  grep -E "FAILED|DIFFERENT|^checks|N4096_K4096_t3|N4096_K14336_t3" /tmp/lab_checks.log | head -8
  { echo "##### $envs"; cat /tmp/lab_checks.log; } >> $OUT/lab_checks.log
done
el

echo "=== (2) lab --dec17, 8B lines $(date +%T)"
for r in 1 2; do
  for envs in X_NONE=1 TESSERA_CUDA_GEMV_O2=1 TESSERA_CUDA_GEMV_O2=2 TESSERA_CUDA_GEMV_O2=3 TESSERA_CUDA_GEMV_D8=1 TESSERA_CUDA_GEMV_PBAL=1 TESSERA_CUDA_GEMV_XPQ=1; do
    env $envs LD_LIBRARY_PATH=$N/lib GEMV_LAB_TAG=$envs GEMV_LAB_DEC17_ONLY=8B-o-res,8B-down-res,8B-norm-qkv,8B-norm-gate-up,8B-norm-head \
      timeout 60 $LAB --dec17 > /tmp/lab17.log 2>&1 || echo "rc=$? [$envs]"
    cat /tmp/lab17.log >> $OUT/lab_dec17.log; grep -E "^dec17" /tmp/lab17.log | sed 's/tag=TESSERA_CUDA_GEMV_/tag=/'
  done
done
el

ab() {  # ab SIDE ENVS REPS: tg128 of the 8B
  local side=$1 envs=$2 reps=$3 d=$N; [ $side = old ] && d=$O
  env $envs LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda /tmp/llama-3.1-8b -p 16 -n 128 -r $reps 2>&1 |
    grep -E "\| tg128|rror" | awk -F'|' -v s="$side" -v e="$envs" '{printf "    %-4s %-48s %s\n", s, e, $3}'
}
waitck llama-3.1-8b
echo "=== (3a) 8B tg128 per knob (-r 1), rounds rotating $(date +%T)"
CFG=("old X_NONE=1" "new X_NONE=1" "new TESSERA_CUDA_GEMV_O2=1" "new TESSERA_CUDA_GEMV_O2=3" "new TESSERA_CUDA_GEMV_D8=1" "new TESSERA_CUDA_GEMV_PBAL=1" "new TESSERA_CUDA_GEMV_XPQ=1")
: > /tmp/sweep.txt
for r in 1 2; do
  n=${#CFG[@]}
  for i in $(seq 0 $((n - 1))); do
    j=$(( (i + (r - 1) * 3) % n )); c=${CFG[$j]}
    left && ab ${c%% *} "${c#* }" 1 | tee -a /tmp/sweep.txt
  done
  el
done
# Means per configuration; the knobs that gained > 0.4% over "new X_NONE=1" go together.
awk '{k=$1" "$2; s[k]+=$3; n[k]++} END {for (k in s) printf "%s %.2f\n", k, s[k]/n[k]}' /tmp/sweep.txt | sort | tee /tmp/means.txt
base=$(awk '$1=="new" && $2=="X_NONE=1" {print $3}' /tmp/means.txt)
pick() { awk -v b="$base" -v k="$1" '$1=="new" && $2==k {print ($3 > b * 1.004) ? $3 : 0}' /tmp/means.txt; }
WIN=""
o1=$(pick TESSERA_CUDA_GEMV_O2=1); o3=$(pick TESSERA_CUDA_GEMV_O2=3)
if awk -v a="${o1:-0}" -v b="${o3:-0}" 'BEGIN {exit !(a > 0 || b > 0)}'; then
  if awk -v a="${o1:-0}" -v b="${o3:-0}" 'BEGIN {exit !(a >= b)}'; then WIN="TESSERA_CUDA_GEMV_O2=1"; else WIN="TESSERA_CUDA_GEMV_O2=3"; fi
fi
for k in TESSERA_CUDA_GEMV_D8=1 TESSERA_CUDA_GEMV_PBAL=1 TESSERA_CUDA_GEMV_XPQ=1; do
  v=$(pick $k); awk -v a="${v:-0}" 'BEGIN {exit !(a > 0)}' && WIN="$WIN $k"
done
WIN=$(echo $WIN); echo "winners: [${WIN:-none}]"
[ -z "$WIN" ] && WIN="$ALL"  # nothing gained: the A/B with every knob, for the record
echo "=== (3b) 8B tg128 old / new [$WIN] (-r 2): old new new old old new $(date +%T)"
for side in old new new old old new; do
  left && { [ $side = old ] && ab old X_NONE=1 2 || ab new "$WIN" 2; }
done
el
echo "=== greedy md5 (48 tokens) $(date +%T)"
for c in "old X_NONE=1" "new X_NONE=1" "new $WIN" "new $ALL"; do
  side=${c%% *}; envs=${c#* }; d=$N; [ $side = old ] && d=$O
  env $envs LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/llama-3.1-8b "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run.txt
  echo "  $side [$envs] rc=$? $(md5sum < /tmp/run.txt | cut -c1-12) $(wc -c < /tmp/run.txt) bytes"
done
el

if left; then
  echo "=== (4) CUDA suites + graph replay (new plugin, $ALL) $(date +%T)"
  B=$N; P=$N/lib/tessera/backends; export LD_LIBRARY_PATH=$N/lib
  export TESSERA_CUDA_GEMV_O2=1 TESSERA_CUDA_GEMV_D8=1 TESSERA_CUDA_GEMV_PBAL=1 TESSERA_CUDA_GEMV_XPQ=1
  cuda_suites
  echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
  unset TESSERA_CUDA_GEMV_O2 TESSERA_CUDA_GEMV_D8 TESSERA_CUDA_GEMV_PBAL TESSERA_CUDA_GEMV_XPQ
  el
fi
echo "=== (5) skip runs (TESSERA_CUDA_LAB_SKIP; new plugin, knobs off; -r 1, exec profile) $(date +%T)"
skipbench() {  # skipbench LABEL ENV...
  local lab=$1; shift
  local o; o=$(env TESSERA_CUDA_PROFILE=exec "$@" LD_LIBRARY_PATH=$N/lib timeout 60 $N/bin/engine bench \
    --backend cuda /tmp/llama-3.1-8b -p 16 -n 128 -r 1 2>&1)
  echo "##### skip=[$lab] $*" >> $OUT/skip.log; echo "$o" | grep -E "cuda profile|\| tg" >> $OUT/skip.log
  printf "  %-16s tg %s  gpu: %s\n" "[$lab]" \
    "$(echo "$o" | grep -E '\| tg128' | awk -F'|' '{print $3}' | awk '{print $1}')" \
    "$(echo "$o" | grep -E 'execute of [0-9]+ nodes \(gpu\)' | awk '{print $6"x "$8"us"}' | tr '\n' ' ')"
}
SK=("PAGED_ATTENTION" "ROPE" "KV_WRITE" "=SWIGLU" "N=4096 K=4096" "MATMUL x3" "K=14336" "MATMUL x2")
skipbench none X_NONE=1
for k in "${SK[@]}"; do left || break; skipbench "$k" "TESSERA_CUDA_LAB_SKIP=$k"; done
left && skipbench none X_NONE=1
el

echo "total $(( $(date +%s) - T0 )) s"
