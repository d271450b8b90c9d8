#!/bin/bash
# cu-dec18's GPU calls (eighteenth session), from the repo root, carrying .dev/cu-dec18/bundle.tar.xz
# (engine, tests, CPU plugin and this tree's CUDA plugin + cuda_gemv_lab, built from HEAD 0a00b9a
# plus the change; HEAD's CUDA plugin as bundle/old/; this script and lab_common.sh inside).
# CALL=1 (22:14 UTC): measure + the one-block ROPE q/k + KV_WRITE k/v launch on by default
#   (results/dec18/ropekv_not_kept.diff: -3.5% 8B, measured, not kept): lab --ropekv bits and
#   timing, ncu on a tiny kernel, ncu source counters + warp states of the 8B norm + gate/up and
#   norm + q/k/v GEMV launches (lab --dec17, one launch each; text exports), suites, md5, tg128
#   old / new, per-node and exec profiles.
# CALL=2: the RMS_NORM prologue of the fused GEMV in one memory round trip (GemvRmsStageRegs,
#   TESSERA_CUDA_GEMV_RMSREG=0 = before): lab GEMV checks (memcmp, incl. the engine's 8B / 1B
#   RMS launches), lab --dec17 RMSREG=0 / 1 alternating, suites, graph replay, md5 old / new /
#   RMSREG=0, tg128 old / new interleaved (8B, 1B: 3 rounds; 0.5B: 2), exec profiles.
# CALL=3: ncu source counters + warp states of the 8B norm + q/k/v, norm + gate/up, o and down
#   launches with the change (stall summaries by ncu_stalls.py).
# Re-run: build tessera_backend_cuda cuda_gemv_lab engine + the four tests, make the bundle (this
# session's notes), `tar xJf .dev/cu-dec18/bundle.tar.xz -C .dev/cu-dec18 && CALL=2 DEADLINE=200
# OUT=$OUT bash .dev/cu-dec18/bundle/dec18_gpu.sh`. Logs in $OUT (results/dec18/call{1,2}/).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-230}; PDEADLINE=${PDEADLINE:-270}; MEASURE=${MEASURE:-1}; CALL=${CALL:-2}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
D=.dev/cu-dec18
[ -d $D/bundle/bin ] || tar xJf $D/bundle.tar.xz -C $D
B=$PWD/$D/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
. $B/lab_common.sh
make_checkpoints llama-3.2-1b llama-3.1-8b qwen2.5-0.5b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"
rm -rf /tmp/oldp && cp -r $B /tmp/oldp && cp $B/old/libtessera_backend_cuda.so /tmp/oldp/lib/tessera/backends/
side_dir() { [ $1 = old ] && echo /tmp/oldp || echo $B; }
if [ "$CALL" = 1 ]; then OFFK=TESSERA_CUDA_FUSE_ROPEKV; else OFFK=TESSERA_CUDA_GEMV_RMSREG; fi
side_env() { case $1 in off) echo $OFFK=0 ;; *) echo X_NONE=1 ;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }


call2() {
echo "=== lab GEMV + SWIGLU checks (memcmp), RMSREG default $(date +%T)"
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 150 $B/bin/cuda_gemv_lab --quick > $OUT/lab_checks.log 2>&1
echo "rc=$? shapes $(grep -c '^checked' $OUT/lab_checks.log); same-bits lines $(grep -c 'same bits' $OUT/lab_checks.log)"
grep -E "FAILED|DIFFERENT|^checks|_N4096|_N14336|_N2048|_N8192" $OUT/lab_checks.log | head -20
el
for r in 1 2; do for m in 0 1; do
  echo "=== lab --dec17 RMSREG=$m (round $r) $(date +%T)"
  GEMV_LAB_TAG=RMSREG=$m TESSERA_CUDA_GEMV_RMSREG=$m timeout 60 $B/bin/cuda_gemv_lab --dec17 > /tmp/lab17.log 2>&1; echo "rc=$?"
  cat /tmp/lab17.log >> $OUT/lab_dec17.log; grep -E "^dec17" /tmp/lab17.log
done; done
el
echo "=== CUDA suites (new plugin, default)"; cuda_suites
echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
for s in llama-3.2-1b llama-3.1-8b; do
  waitck $s
  for side in old new off; do d=$(side_dir $side)
    env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
  done
done
el
for r in 1 2 3; do
  for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
    left || break
    [ $s = qwen2.5-0.5b ] && [ $r = 3 ] && continue
    waitck $s
    if [ $((r % 2)) = 1 ]; then S="old new"; else S="new old"; fi
    echo "=== $s tg128 round $r ($S)"
    for side in $S; do ab $side /tmp/$s -p 16 -n 128 -r 3; done
    el
  done
done
for sd in llama-3.1-8b:old llama-3.1-8b:new llama-3.1-8b:off; do
  s=${sd%:*}; side=${sd#*:}; d=$(side_dir $side)
  [ $(( $(date +%s) - T0 )) -lt $PDEADLINE ] || break
  echo "--- exec profile $s $side"
  env $(side_env $side) TESSERA_CUDA_PROFILE=exec LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda /tmp/$s -p 16 -n 64 -r 1 2>&1 | grep -E "execute of .* \(gpu\)|\| tg" | head -3
done
echo "total $(( $(date +%s) - T0 )) s"
}
if [ "$CALL" = 2 ]; then call2; exit 0; fi
call3() {
for s in 8B-norm-qkv 8B-norm-gate-up 8B-o 8B-down; do
  left || break
  echo "=== ncu source counters + warp states, lab --dec17 $s (4th launch, RMSREG default) $(date +%T)"
  GEMV_LAB_DEC17_ONLY=$s GEMV_LAB_NCU=1 timeout 90 $NCU --clock-control none -k regex:Gemv \
    --launch-skip 3 --launch-count 1 --section SourceCounters --section WarpStateStats \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section SchedulerStats \
    --import-source no -f -o /tmp/ncu_$s $B/bin/cuda_gemv_lab --dec17 > /tmp/ncu_$s.log 2>&1
  echo "rc=$?"
  $NCU --import /tmp/ncu_$s.ncu-rep --page details > $OUT/ncu_${s}_details.txt 2>&1
  $NCU --import /tmp/ncu_$s.ncu-rep --page source --csv --print-source sass > /tmp/ncu_${s}_source.csv 2>&1
  python3 $B/ncu_stalls.py /tmp/ncu_${s}_source.csv > $OUT/ncu_${s}_stalls.txt 2>&1
  grep -E "Duration|DRAM Throughput|Registers Per|Grid Size|Block Size" $OUT/ncu_${s}_details.txt | head -6
  head -24 $OUT/ncu_${s}_stalls.txt
  el
done
echo "total $(( $(date +%s) - T0 )) s"
}
if [ "$CALL" = 3 ]; then call3; exit 0; fi
echo "=== lab --ropekv: bits vs the four kernels, T = 1 timed $(date +%T)"
timeout 60 $B/bin/cuda_gemv_lab --ropekv > $OUT/lab_ropekv.log 2>&1; echo "rc=$?"
echo "checked $(grep -c '^checked' $OUT/lab_ropekv.log), same bits $(grep -c 'same bits' $OUT/lab_ropekv.log)"
grep -E "DIFFERENT|FAILED|^checks|^time" $OUT/lab_ropekv.log | head -12
el
if [ "$MEASURE" = 1 ] && [ -n "$NCU" ]; then
  echo "=== ncu tiny: the lab's ROPE / KV kernels (T = 1 check, durations) $(date +%T)"
  timeout 60 $NCU --clock-control none --metrics gpu__time_duration.sum -k regex:"Rope|KvWrite" \
    --launch-count 8 $B/bin/cuda_gemv_lab --ropekv > /tmp/ncu_tiny.log 2>&1; echo "rc=$?"
  grep -E "Rope|KvWrite|gpu__time|==ERR|==WARN" /tmp/ncu_tiny.log | head -20
  el
  for s in 8B-norm-gate-up 8B-norm-qkv; do
    left || break
    echo "=== ncu source counters + warp states, lab --dec17 $s (4th launch) $(date +%T)"
    GEMV_LAB_DEC17_ONLY=$s GEMV_LAB_NCU=1 timeout 90 $NCU --clock-control none -k regex:Gemv \
      --launch-skip 3 --launch-count 1 --section SourceCounters --section WarpStateStats \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section SchedulerStats \
      --import-source no -f -o /tmp/ncu_$s $B/bin/cuda_gemv_lab --dec17 > /tmp/ncu_$s.log 2>&1
    echo "rc=$?"; tail -3 /tmp/ncu_$s.log
    $NCU --import /tmp/ncu_$s.ncu-rep --page details > /tmp/ncu_${s}_details.txt 2>&1
    $NCU --import /tmp/ncu_$s.ncu-rep --page source --csv --print-source sass > /tmp/ncu_${s}_source.csv 2>&1
    echo "details $(wc -l < /tmp/ncu_${s}_details.txt) lines, source $(wc -c < /tmp/ncu_${s}_source.csv) bytes"
    grep -E "Duration|DRAM Throughput|Registers Per|Achieved Occupancy|No Eligible|Issued Warp|Warp Cycles Per Issued|Stall|stall" /tmp/ncu_${s}_details.txt | head -24
    el
  done
  tar cf - -C /tmp ncu_8B-norm-gate-up_details.txt ncu_8B-norm-qkv_details.txt ncu_8B-norm-gate-up_source.csv \
    ncu_8B-norm-qkv_source.csv ncu_tiny.log 2>/dev/null | xz -T4 > $OUT/ncu_text.tar.xz
  ls -la $OUT/ncu_text.tar.xz
fi
echo "=== CUDA suites (new plugin, default)"; cuda_suites
echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
for s in llama-3.2-1b llama-3.1-8b; do
  waitck $s
  for side in old new off; do d=$(side_dir $side)
    [ $s = llama-3.1-8b ] && [ $side = off ] && continue
    env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
  done
done
el
for r in 1 2; do
  for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
    left || break
    [ $s = qwen2.5-0.5b ] && [ $r = 2 ] && continue
    waitck $s
    if [ $((r % 2)) = 1 ]; then S="old new"; else S="new old"; fi
    echo "=== $s tg128 round $r ($S)"
    for side in $S; do ab $side /tmp/$s -p 16 -n 128 -r 3; done
    el
  done
done
if [ "$MEASURE" = 1 ]; then
  for sd in llama-3.1-8b:old llama-3.1-8b:new llama-3.2-1b:new; do
    s=${sd%:*}; side=${sd#*:}; d=$(side_dir $side)
    [ $(( $(date +%s) - T0 )) -lt $PDEADLINE ] || break
    echo "=== per-node profile $s $side (graphs off, -p 16 -n 8) $(date +%T)"
    TESSERA_CUDA_PROFILE=1 LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda /tmp/$s -p 16 -n 8 -r 1 > /tmp/prof_${s}_$side.log 2>&1
    echo "rc=$?"; grep "cuda profile" /tmp/prof_${s}_$side.log > $OUT/prof_${s}_$side.log
    sort -k3,3 -g -r $OUT/prof_${s}_$side.log | head -14
    echo "--- exec ($side)"
    TESSERA_CUDA_PROFILE=exec LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda /tmp/$s -p 16 -n 64 -r 1 2>&1 | grep -E "cuda profile|\| tg" | head -8
  done
  el
fi
for s in llama-3.1-8b llama-3.2-1b; do
  left || break
  [ "${ROUND3:-0}" = 1 ] || break
  echo "=== $s tg128 round 3 (old new off)"
  for side in old new off; do ab $side /tmp/$s -p 16 -n 128 -r 3; done
  el
done
echo "total $(( $(date +%s) - T0 )) s"
