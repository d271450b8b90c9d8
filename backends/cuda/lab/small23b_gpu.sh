#!/bin/bash
# cu23-small's second GPU call (twenty-third session, H200): the final tree. Call 1 (small23_gpu.sh)
# had the combine in every warp behind a runtime bit, which grew every RMS_NORM-prologue kernel by
# ~2.3 KB of SASS (10-24 KB in its first form), and measured the 1B / 8B below old; here the
# combine is unconditional (prologue kernels at or below HEAD's size), TESSERA_CUDA_GEMV_RMSPRE=0/1
# moves only the norm weight's loads, and the 1B norm + gate/up's balanced grid is the default
# (TESSERA_CUDA_GEMV_PBAL=0 = before). Carries .dev/cu23-small/small23b.tar.xz (bundle/ as call 1's,
# small23b/: the final plugin "new", its -DTESSERA_CUDA_GEMV_STAMPS=ON twin, cuda_gemv_lab, this
# script). Steps (none starts past $DEADLINE s): lab --dec17 RMSPRE 0 1, PBAL 0 / default; md5
# old / new (0.5B, 1B); (STAMPS=1: stamps 0.5B, 1B: r0 = RMSPRE=0 PBAL=0, new; off in the call);
# tg128 old new new old (0.5B, 1B); CUDA suites + argmax graph + lab bits on new; 8B md5 old /
# new, tg128 old new new old.
# Run: `rm -rf /tmp/cu23s && mkdir -p /tmp/cu23s && tar xJf .dev/cu23-small/small23b.tar.xz -C
# /tmp/cu23s && OUT=$OUT bash /tmp/cu23s/small23b/small23b_gpu.sh` (from the repo root).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-75}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
W=/tmp/cu23s; G=$W/small23b; B=$W/bundle
. backends/cuda/lab/lab_common.sh
need=""; for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do [ -f /tmp/$s.done ] || need="$need $s"; done
[ -n "$need" ] && make_checkpoints $need
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
echo "checkpoints made here:${need:- none (warm machine)}"
waitf() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
echo "=== lab --dec17 RMSPRE 0 1, PBAL 0 / default $(date +%T)"
for w in 0 1; do
  TESSERA_CUDA_GEMV_RMSPRE=$w GEMV_LAB_TAG=r$w GEMV_LAB_DEC17_ONLY=05B-norm-qkv,05B-norm-gate-up,1B-norm-qkv,8B-norm-qkv,8B-norm-gate-up \
    timeout 30 $G/cuda_gemv_lab --dec17 >> $OUT/lab_dec17.log 2>&1
done
for w in 0 -1; do
  TESSERA_CUDA_GEMV_PBAL=$w GEMV_LAB_TAG=pbal$w GEMV_LAB_DEC17_ONLY=1B-norm-gate-up timeout 30 $G/cuda_gemv_lab --dec17 >> $OUT/lab_dec17.log 2>&1
done
grep -E "^dec17" $OUT/lab_dec17.log | sort -s -k2,2 | awk '{printf "  %s %s %s\n", $2, $3, $4}'
el
for s in new stamps; do
  rm -rf $W/$s && mkdir -p $W/$s && cp -r $B/bin $B/lib $W/$s/ &&
    cp $G/libtessera_backend_cuda.$s.so $W/$s/lib/tessera/backends/libtessera_backend_cuda.so
done
side_dir() { case $1 in old) echo $B;; *) echo $W/new;; esac; }
side_env() { case $1 in r0) echo TESSERA_CUDA_GEMV_RMSPRE=0 TESSERA_CUDA_GEMV_PBAL=0;; *) echo X_NONE=1;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
PROMPT="the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog"
md5s() { local s side d
  for s in "$@"; do left || return; waitf $s
    for side in old new; do d=$(side_dir $side)
      LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine --backend cuda run /tmp/$s "$PROMPT" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
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
if [ "${STAMPS:-0}" = 1 ]; then  # off in the call (device allowance)
  echo "=== stamps (stamps twin of new; r0 = RMSPRE=0 PBAL=0)"
  stamps qwen2.5-0.5b r0 TESSERA_CUDA_GEMV_RMSPRE=0 TESSERA_CUDA_GEMV_PBAL=0
  stamps qwen2.5-0.5b new X_NONE=1
  stamps llama-3.2-1b r0 TESSERA_CUDA_GEMV_RMSPRE=0 TESSERA_CUDA_GEMV_PBAL=0
  stamps llama-3.2-1b new X_NONE=1
fi
round qwen2.5-0.5b old new new old
round llama-3.2-1b old new new old
if left; then
  P=$W/new/lib/tessera/backends
  echo "=== CUDA suites (new) $(date +%T)"
  bash -c ". backends/cuda/lab/lab_common.sh; B=$B P=$P OUT=/tmp cuda_suites"
  cp /tmp/tests.log $OUT/tests.log
  echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
  echo "=== lab bit checks (new lab) $(date +%T)"
  GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 40 $G/cuda_gemv_lab --quick > $OUT/lab_checks.log 2>&1
  echo "rc=$? same-bits lines $(grep -c 'same bits' $OUT/lab_checks.log), checked lines $(grep -c '^checked' $OUT/lab_checks.log), $(grep -c 'DIFFERENT' $OUT/lab_checks.log) DIFFERENT"
  grep -E "failures|rror" $OUT/lab_checks.log | tail -2; el
fi
md5s llama-3.1-8b
round llama-3.1-8b old new new old
echo "=== done"; el
