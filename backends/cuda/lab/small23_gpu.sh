#!/bin/bash
# cu23-small's GPU call (twenty-third session, H200): the RMS_NORM register prologue's norm weight
# before the PDL wait and its warp-sum combine in every warp (TESSERA_CUDA_GEMV_RMSPRE: bit 1 /
# bit 2, default 3; 0 = before), the balanced persistent grid for the 1B norm + gate/up
# (TESSERA_CUDA_GEMV_PBAL=2, lab knob), FUSE_DEBUG lines of the decode norm + GEMV fusion.
# Carries .dev/cu23-small/small23.tar.xz (35 MB): bundle/ (bundle23 = HEAD d3227ed's, less
# bin/cuda_gemv_lab, the Vulkan plugin and share/tessera/models: its CUDA plugin is "old") and
# small23/ (this tree's stripped CUDA plugin "new", the same with -DTESSERA_CUDA_GEMV_STAMPS=ON
# "stamps", this tree's cuda_gemv_lab, this script).
# Steps (none starts past $DEADLINE s): lab --dec17 prologue lines RMSPRE 0 3 1 2 0 3 (+ PBAL=2 on
# the 1B gate/up); greedy md5 old / new (0.5B, 1B, 8B); stamps timelines (0.5B, 1B: RMSPRE 0 / 3,
# 1B PBAL=2); FUSE_DEBUG lines and the bench's host split (0.5B, 1B); tg128 old new new old
# (0.5B, 8B; 1B old new pb2 pb2 new old); CUDA suites + argmax graph + lab bit checks on new.
# Run: `rm -rf /tmp/cu23s && mkdir -p /tmp/cu23s && tar xJf .dev/cu23-small/small23.tar.xz -C
# /tmp/cu23s && OUT=$OUT bash /tmp/cu23s/small23/small23_gpu.sh` (from the repo root).
# Note: call 1 ran an intermediate form of this tree (RMSPRE bit 2 = the every-warp combine as a
# runtime choice, PBAL=2 = the 1B balance as a lab knob); in the final tree the combine is
# unconditional, RMSPRE is 0 / 1 (any nonzero = 1) and the balance is the default (PBAL=0 off), so
# this script's r0 side there means "weight after the wait" only. Final call: small23b_gpu.sh.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-175}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
W=/tmp/cu23s; G=$W/small23; B=$W/bundle
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
waitf() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
echo "=== lab --dec17 prologue launches, RMSPRE 0 3 1 2 0 3 $(date +%T)"
L=05B-norm-qkv,05B-norm-gate-up,05B-norm-head,1B-norm-qkv,1B-norm-gate-up,8B-norm-qkv,8B-norm-gate-up
for w in 0 3 1 2 0 3; do
  TESSERA_CUDA_GEMV_RMSPRE=$w GEMV_LAB_TAG=r$w GEMV_LAB_DEC17_ONLY=$L timeout 30 $G/cuda_gemv_lab --dec17 >> $OUT/lab_dec17.log 2>&1
done
for w in 0 2; do
  TESSERA_CUDA_GEMV_PBAL=$w GEMV_LAB_TAG=pbal$w GEMV_LAB_DEC17_ONLY=1B-norm-gate-up timeout 30 $G/cuda_gemv_lab --dec17 >> $OUT/lab_dec17.log 2>&1
done
grep -E "^dec17" $OUT/lab_dec17.log | sort -s -k2,2 | awk '{printf "  %s %s %s\n", $2, $3, $4}'
el
for s in new stamps; do
  rm -rf $W/$s && mkdir -p $W/$s && cp -r $B/bin $B/lib $W/$s/ &&
    cp $G/libtessera_backend_cuda.$s.so $W/$s/lib/tessera/backends/libtessera_backend_cuda.so
done
side_dir() { case $1 in old) echo $B;; stamps) echo $W/stamps;; *) echo $W/new;; esac; }
side_env() { case $1 in r0) echo TESSERA_CUDA_GEMV_RMSPRE=0;; pb2) echo TESSERA_CUDA_GEMV_PBAL=2;; *) echo X_NONE=1;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
PROMPT="the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog"
md5s() { local s side d
  for s in "$@"; do left || return; waitf $s
    for side in old new; do d=$(side_dir $side)
      env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine --backend cuda run /tmp/$s "$PROMPT" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
      echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
    done
  done; el; }
stamps() { local s=$1 label=$2; shift 2; left || return; waitf $s
  env "$@" TESSERA_GEMV_STAMP_OUT=/tmp/st.bin LD_LIBRARY_PATH=$W/stamps/lib timeout 60 \
    $W/stamps/bin/engine bench --backend cuda /tmp/$s -p 16 -n 128 -r 1 2>&1 | grep -E "\| tg|rror" | sed "s/^/    $label /"
  python3 backends/cuda/lab/stamps22.py /tmp/st.bin "$s $label" 40 2>&1 | tee -a $OUT/stamps.log
  rm -f /tmp/st.bin; }
round() { local s=$1 side; shift; left || return; waitf $s; echo "=== $s tg128 $(date +%T)"
  for side in "$@"; do ab $side /tmp/$s -p 16 -n 128 -r 2; done; el; }
echo "=== greedy md5 (48 tokens) old / new"
md5s qwen2.5-0.5b llama-3.2-1b
echo "=== stamps (lab plugin)"
stamps qwen2.5-0.5b r0 TESSERA_CUDA_GEMV_RMSPRE=0
stamps qwen2.5-0.5b new X_NONE=1
stamps llama-3.2-1b r0 TESSERA_CUDA_GEMV_RMSPRE=0
stamps llama-3.2-1b new X_NONE=1
stamps llama-3.2-1b pb2 TESSERA_CUDA_GEMV_PBAL=2
el
echo "=== FUSE_DEBUG (new, 0.5B / 1B decode)"
for s in qwen2.5-0.5b llama-3.2-1b; do
  TESSERA_CUDA_FUSE_DEBUG=1 LD_LIBRARY_PATH=$W/new/lib timeout 60 $W/new/bin/engine bench --backend cuda /tmp/$s -p 16 -n 8 -r 1 2>&1 |
    grep -E "refused|rror" | sed "s/^/  $s /"
done
echo "=== step host split (TESSERA_BENCH_STEP_TIMES=1, new, tg128 -r 1)"
for s in qwen2.5-0.5b llama-3.2-1b; do
  TESSERA_BENCH_STEP_TIMES=1 LD_LIBRARY_PATH=$W/new/lib timeout 60 $W/new/bin/engine bench --backend cuda /tmp/$s -p 16 -n 128 -r 1 2>&1 |
    grep -E "\| tg|bench steps|rror" | sed "s/^/  $s /"
done
round qwen2.5-0.5b ${SIDES05:-old new new old}
round llama-3.2-1b ${SIDES1B:-old new pb2 pb2 new old}
md5s llama-3.1-8b
round llama-3.1-8b ${SIDES8B:-old new new old}
if [ "${CHECKS:-1}" = 1 ] && left; then
  P=$W/new/lib/tessera/backends
  echo "=== CUDA suites (new) $(date +%T)"
  bash -c ". backends/cuda/lab/lab_common.sh; B=$B P=$P OUT=/tmp cuda_suites"
  cp /tmp/tests.log $OUT/tests.log
  echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
  el
fi
for w in 3; do
  if [ "${CHECKS:-1}" = 1 ] && left; then
    echo "=== lab bit checks (new lab, RMSPRE=$w) $(date +%T)"
    TESSERA_CUDA_GEMV_RMSPRE=$w GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 40 $G/cuda_gemv_lab --quick > $OUT/lab_checks_r$w.log 2>&1
    echo "rc=$? same-bits lines $(grep -c 'same bits' $OUT/lab_checks_r$w.log), checked lines $(grep -c '^checked' $OUT/lab_checks_r$w.log), $(grep -c 'DIFFERENT' $OUT/lab_checks_r$w.log) DIFFERENT"
    grep -E "failures|rror" $OUT/lab_checks_r$w.log | tail -2; el
  fi
done
echo "=== done"; el
