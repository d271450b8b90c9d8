#!/bin/bash
# cu22-small's second GPU call (twenty-second session): the XP rule for one-wave plain launches
# below K = 4096 (GemvXpOn's wave1 clause: the 1B o; TESSERA_CUDA_GEMV_XP1W=0 = without it), the
# after-wait bulk prefetch of call 1 (small22_gpu.sh) removed; the weight prefetch as 128-byte
# lines over all threads (TESSERA_CUDA_GEMV_PREFL, default 0: "L3" = 3, after the wait; "L7" = 7,
# before it). Carries .dev/cu22-small/small22b.tar.xz:
# bundle/ (bundle22's engine, libraries, CPU plugin, CUDA suites and its CUDA plugin = "old": HEAD
# bcdacb7 + the GemvXpOn change) and small22/ (this tree's stripped CUDA plugin = "new", the same
# tree with -DTESSERA_CUDA_GEMV_STAMPS=ON = "stamps", this tree's cuda_gemv_lab, this script,
# stamps22.py).
# Steps (none starts past $DEADLINE s): lab --dec17 1B-o-res XP1W 0 1 0 1, 0.5B lines PREFL 0 3 7;
# greedy md5 old / new (0.5B, 1B); stamps timelines (1B XP1W 0 / new / L3 / L7, 0.5B new / L3 /
# L7); tg128 old new L3 L7 L7 L3 new old (1B, 0.5B); CUDA suites + lab bit checks on new with
# PREFL=7 set (covers the XP1W launches too).
# Run: `tar xJf .dev/cu22-small/small22b.tar.xz -C /tmp && OUT=$OUT bash /tmp/small22/small22b_gpu.sh`
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
G=/tmp/small22; [ -d $G ] || tar xJf .dev/cu22-small/small22b.tar.xz -C /tmp
B=/tmp/bundle
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
waitf() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
echo "=== lab --dec17 1B-o-res XP1W 0 1 0 1 $(date +%T)"
for w in 0 1 0 1; do
  TESSERA_CUDA_GEMV_XP1W=$w GEMV_LAB_TAG=x$w GEMV_LAB_DEC17_ONLY=1B-o-res,05B-o-res timeout 30 $G/cuda_gemv_lab --dec17 >> $OUT/lab_dec17.log 2>&1
done
grep -E "^dec17" $OUT/lab_dec17.log | sort -s -k2,2 | awk '{printf "  %s %s %s\n", $2, $3, $4}'
for w in 0 3 7 0 3 7; do
  TESSERA_CUDA_GEMV_PREFL=$w GEMV_LAB_TAG=L$w GEMV_LAB_DEC17_ONLY=05B-norm-qkv,05B-norm-gate-up,05B-o-res,05B-down-res,1B-norm-qkv \
    timeout 30 $G/cuda_gemv_lab --dec17 >> $OUT/lab_dec17L.log 2>&1
done
grep -E "^dec17" $OUT/lab_dec17L.log | sort -s -k2,2 | awk '{printf "  %s %s %s\n", $2, $3, $4}'
el
for s in new stamps; do
  rm -rf /tmp/$s && mkdir -p /tmp/$s && cp -r $B/bin $B/lib /tmp/$s/ &&
    cp $G/libtessera_backend_cuda.$s.so /tmp/$s/lib/tessera/backends/libtessera_backend_cuda.so
done
side_dir() { case $1 in old) echo $B;; stamps) echo /tmp/stamps;; *) echo /tmp/new;; esac; }
side_env() { case $1 in w0) echo TESSERA_CUDA_GEMV_XP1W=0;; L3) echo TESSERA_CUDA_GEMV_PREFL=3;;
  L7) echo TESSERA_CUDA_GEMV_PREFL=7;; *) echo X_NONE=1;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
md5s() { local s side d
  for s in "$@"; do waitf $s
    for side in old new L7; do d=$(side_dir $side)
      env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
      echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
    done
  done; el; }
# stamps CKPT LABEL ENV...: one bench (-r 1) of the stamps plugin, its timeline summary.
stamps() { local s=$1 label=$2; shift 2; left || return; waitf $s
  env "$@" TESSERA_GEMV_STAMP_OUT=/tmp/st.bin LD_LIBRARY_PATH=/tmp/stamps/lib timeout 60 \
    /tmp/stamps/bin/engine bench --backend cuda /tmp/$s -p 16 -n 128 -r 1 2>&1 | grep -E "\| tg|rror" | sed "s/^/    $label /"
  python3 $G/stamps22.py /tmp/st.bin "$s $label" 40 2>&1 | tee -a $OUT/stamps.log
  rm -f /tmp/st.bin; }
round() { local s=$1 side; shift; left || return; waitf $s; echo "=== $s tg128 $(date +%T)"
  for side in "$@"; do ab $side /tmp/$s -p 16 -n 128 -r 2; done; el; }
echo "=== greedy md5 (48 tokens) old / new"
md5s qwen2.5-0.5b llama-3.2-1b
echo "=== stamps (lab plugin)"
stamps llama-3.2-1b w0 TESSERA_CUDA_GEMV_XP1W=0
stamps llama-3.2-1b new X_NONE=1
stamps llama-3.2-1b L3 TESSERA_CUDA_GEMV_PREFL=3
stamps llama-3.2-1b L7 TESSERA_CUDA_GEMV_PREFL=7
stamps qwen2.5-0.5b new X_NONE=1
stamps qwen2.5-0.5b L3 TESSERA_CUDA_GEMV_PREFL=3
stamps qwen2.5-0.5b L7 TESSERA_CUDA_GEMV_PREFL=7
el
round llama-3.2-1b ${SIDES1B:-old new L3 L7 L7 L3 new old}
round qwen2.5-0.5b ${SIDES05:-old new L3 L7 L7 L3 new old}
if [ "${CHECKS:-1}" = 1 ] && left; then
  P=/tmp/new/lib/tessera/backends
  echo "=== CUDA suites (new) $(date +%T)"
  TESSERA_CUDA_GEMV_PREFL=7 bash -c ". backends/cuda/lab/lab_common.sh; B=$B P=$P OUT=/tmp cuda_suites"
  cp /tmp/tests.log $OUT/tests.log
  echo "  graph replay: $(TESSERA_CUDA_GEMV_PREFL=7 TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
  el
fi
if [ "${CHECKS:-1}" = 1 ] && left; then
  echo "=== lab bit checks (new lab, PREFL=7) $(date +%T)"
  TESSERA_CUDA_GEMV_PREFL=7 GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 40 $G/cuda_gemv_lab --quick > $OUT/lab_checks.log 2>&1
  echo "rc=$? same-bits lines $(grep -c 'same bits' $OUT/lab_checks.log), checked lines $(grep -c '^checked' $OUT/lab_checks.log), $(grep -c 'DIFFERENT' $OUT/lab_checks.log) DIFFERENT"
  grep -E "failures|rror" $OUT/lab_checks.log | tail -2; el
fi
echo "=== done"; el
