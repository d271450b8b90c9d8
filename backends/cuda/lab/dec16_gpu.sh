#!/bin/bash
# cu-dec16's GPU calls (sixteenth session), from the repo root, carrying
# .dev/cu-dec16/bundle.tar.gz (this tree's bundle + cuda_gemv_lab and the CUDA test binaries; the
# script itself travels inside it as bundle/dec16_gpu.sh) and .dev/old16.tar.xz (HEAD fee64b5's
# engine and plugins, side "old").
#   MODE=1: where an 8B batch-1 decode token goes: cuda_gemv_lab --dec16 (plain read vs the GEMV's
#           load pattern vs the engine's GEMV launches at the 8B shapes), ncu of the lab's read /
#           GEMV kernels (sections), ncu of one 8B and one 1B decode step (graphs off, kernels
#           serialized: duration + DRAM bytes a kernel), the exec profile (graphs on: GPU time of
#           a step), engine tg128 A/B of $SIDES.
#   MODE=2: correctness of the new plugin (cuda_gemv_lab checks, conformance, golden, scheduler,
#           graph replay test, greedy md5 per side), then tg128 A/B of $SIDES on 8B and 1B.
# Sides: new (this bundle), old (HEAD's CUDA plugin), otma (call 1's build + TESSERA_CUDA_GEMV_OTMA=1:
# the 8B o through the whole-chunk TMA ring; removed after call 1), xp1 (new +
# TESSERA_CUDA_GEMV_XP=1: x pre-split on every launch that fits), lines (new +
# TESSERA_CUDA_GEMV_LINES=1: line-shaped weight loads in the half-chunk launches).
#   MODE=3: the line-shaped loads: GEMV bit checks (lab variants 13 / 14 in every check), lab
#           timing, suites with LINES=1, greedy md5 old / new / lines, tg128 A/B 8B and 1B.
# Not in the tree any more (the sides and MODE=3 need them back): TESSERA_CUDA_GEMV_OTMA (call 1's
# build only), TESSERA_CUDA_GEMV_LINES / _PRONEXT (results/dec16/lines_pronext_not_kept.diff).
# Calls made: MODE=1 (call 1), MODE=2 (call 2), MODE=3 (call 3); logs in results/dec16/call*/.
# Steps stop starting past $DEADLINE s. Logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}; MODE=${MODE:-1}; SIDES=${SIDES:-new old otma}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
D=.dev/cu-dec16
[ -d $D/bundle/bin ] || tar xzf $D/bundle.tar.gz -C $D
B=$PWD/$D/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
. backends/cuda/lab/lab_common.sh 2>/dev/null || . $B/lab_common.sh
make_checkpoints llama-3.1-8b llama-3.2-1b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"
rm -rf /tmp/oldp && cp -r $B /tmp/oldp && mkdir -p /tmp/old16 && tar xJf .dev/old16.tar.xz -C /tmp/old16 &&
  cp /tmp/old16/libtessera_backend_cuda.so /tmp/oldp/lib/tessera/backends/
side_env() { case $1 in otma) echo TESSERA_CUDA_GEMV_OTMA=1 ;; xp1) echo TESSERA_CUDA_GEMV_XP=1 ;;
  d0) echo TESSERA_CUDA_GEMV_DOWNFULL=0 ;; x0) echo TESSERA_CUDA_GEMV_XP2=0 ;;
  pn) echo TESSERA_CUDA_GEMV_PRONEXT=1 ;; lines) echo TESSERA_CUDA_GEMV_LINES=1 ;;
  *) echo X_UNUSED=1 ;; esac; }
side_dir() { [ $1 = old ] && echo /tmp/oldp || echo $B; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }

if [ "$MODE" = 1 ]; then
  echo "=== cuda_gemv_lab --dec16 $(date +%T)"
  timeout 150 $B/bin/cuda_gemv_lab --dec16 > $OUT/lab_dec16.log 2>&1; echo "rc=$?"
  grep -E "^copy|^read .*(plain 64|16w x2 \(|8w x3 \(|16w x1 \()|^engine_gemv|^prologue " $OUT/lab_dec16.log | head -60
  echo "=== cuda_gemv_lab --dec16, GEMV launches only, TESSERA_CUDA_GEMV_XP=1 $(date +%T)"
  TESSERA_CUDA_GEMV_XP=1 GEMV_LAB_DEC16_GEMV_ONLY=1 timeout 100 $B/bin/cuda_gemv_lab --dec16 > $OUT/lab_dec16_xp1.log 2>&1; echo "rc=$?"
  grep -E "^engine_gemv .*v=0 |^prologue " $OUT/lab_dec16_xp1.log | head -20
  el
  if [ -n "$NCU" ] && left; then
    echo "=== ncu sections of the lab's read / GEMV kernels $(date +%T)"
    timeout 120 $NCU --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis \
      --section SchedulerStats --section WarpStateStats --section Occupancy --section LaunchStats \
      $B/bin/cuda_gemv_lab --dec16-ncu > $OUT/ncu_lab.log 2>&1; echo "rc=$?"
    grep -E "^  [A-Za-z].*Kernel|Duration|DRAM Throughput|Memory Throughput|Issue Slots Busy|Issued Warp|No Eligible|Active Warps Per|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Eligible Warps" $OUT/ncu_lab.log | head -80
    el
  fi
  for s in llama-3.1-8b llama-3.2-1b; do
    waitck $s; left || break
    if [ -n "$NCU" ]; then
      echo "=== ncu $s one decode step a kernel (graphs off) $(date +%T)"
      TESSERA_CUDA_GRAPHS=0 timeout 150 $NCU --clock-control none --launch-count 1300 \
        --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum --csv \
        $B/bin/engine bench --backend cuda /tmp/$s -p 0 -n 4 -r 1 > $OUT/ncu_$s.csv 2> $OUT/ncu_$s.err
      echo "rc=$? lines $(wc -l < $OUT/ncu_$s.csv)"; tail -2 $OUT/ncu_$s.err
      el
    fi
    left || break
    echo "=== $s PROFILE=exec (graphs on) $(date +%T)"
    TESSERA_CUDA_PROFILE=exec timeout 100 $B/bin/engine bench --backend cuda /tmp/$s -p 16 -n 128 -r 1 > $OUT/exec_$s.log 2>&1
    grep -E "\| tg|execute of .*gpu|graph captured" $OUT/exec_$s.log | sed 's/^/    /'
    el
  done
  s=llama-3.1-8b
  for r in 1 2; do
    left || break
    echo "=== $s tg128 A/B round $r ($SIDES)"
    for side in $SIDES; do ab $side /tmp/$s -p 16 -n 128 -r 2; done
    el
  done
  echo "total $(( $(date +%s) - T0 )) s"
  exit 0
fi

if [ "$MODE" = 3 ]; then
  # Line-shaped weight loads (TESSERA_CUDA_GEMV_LINES=1, side "lines"): bits, lab, suites, A/B.
  echo "=== cuda_gemv_lab checks (GEMV only; lab variants 13 / 14 = lines / lines8) $(date +%T)"
  GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 150 $B/bin/cuda_gemv_lab --quick > $OUT/lab_checks.log 2>&1
  echo "rc=$? same-bits lines $(grep -c 'same bits' $OUT/lab_checks.log)"
  grep -E "FAILED|^checks|summary" $OUT/lab_checks.log | head
  el
  echo "=== cuda_gemv_lab --dec16 GEMV launches (v=13 lines, v=14 lines8) $(date +%T)"
  GEMV_LAB_DEC16_GEMV_ONLY=1 timeout 120 $B/bin/cuda_gemv_lab --dec16 > $OUT/lab_dec16.log 2>&1; echo "rc=$?"
  grep -E "^engine_gemv .* v=(0|6|10|13|14) |^prologue |^prologue_v .* v=(0|10|13|14) " $OUT/lab_dec16.log | head -40
  el
  echo "=== CUDA suites, TESSERA_CUDA_GEMV_LINES=1"; TESSERA_CUDA_GEMV_LINES=1 cuda_suites
  echo "  graph replay: $(TESSERA_CUDA_GEMV_LINES=1 TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
  el
  echo "=== greedy text per side (md5 of 48 generated tokens)"
  for s in llama-3.2-1b llama-3.1-8b; do
    waitck $s
    for side in old new lines; do d=$(side_dir $side)
      env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
      echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
    done
  done
  el
  for r in 1 2; do
    for s in llama-3.1-8b llama-3.2-1b; do
      left || break
      echo "=== $s tg128 A/B round $r (old new lines)"
      for side in old new lines; do ab $side /tmp/$s -p 16 -n 128 -r 3; done
      el
    done
  done
  echo "total $(( $(date +%s) - T0 )) s"
  exit 0
fi

# MODE=2: correctness, then A/B. Sides here: d0 = new with TESSERA_CUDA_GEMV_DOWNFULL=0, x0 = new
# with TESSERA_CUDA_GEMV_XP2=0, pn = new with TESSERA_CUDA_GEMV_PRONEXT=1.
echo "=== cuda_gemv_lab checks (GEMV only) $(date +%T)"
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 150 $B/bin/cuda_gemv_lab --quick > $OUT/lab_checks.log 2>&1
echo "rc=$? bits_vs_gemm compared: $(grep -c '^checked' $OUT/lab_checks.log) shapes; same-bits lines $(grep -c 'same bits' $OUT/lab_checks.log)"
grep -E "FAILED|^checks|summary|^checked N4096_K14336|^checked N2048_K2048" $OUT/lab_checks.log | head
el
echo "=== cuda_gemv_lab --dec16 (new rule) $(date +%T)"
timeout 120 $B/bin/cuda_gemv_lab --dec16 > $OUT/lab_dec16.log 2>&1; echo "rc=$?"
grep -E "^copy|line-shaped|^read .*(16w x2 \(|8w x3 \(|16w x1 \()|^engine_gemv .* v=0 |^prologue " $OUT/lab_dec16.log | head -40
el
echo "=== CUDA suites (new plugin)"; cuda_suites; cp $OUT/tests.log $OUT/tests_new.log
echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
for s in llama-3.2-1b llama-3.1-8b; do
  waitck $s
  for side in old new pn; do d=$(side_dir $side)
    env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
  done
done
el
for r in 1 2; do
  for s in llama-3.1-8b llama-3.2-1b; do
    left || break
    [ $s = llama-3.1-8b ] && S="old new d0 x0 pn" || S="old new x0"
    echo "=== $s tg128 A/B round $r ($S)"
    for side in $S; do ab $side /tmp/$s -p 16 -n 128 -r 3; done
    el
  done
done
echo "total $(( $(date +%s) - T0 )) s"
