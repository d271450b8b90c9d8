#!/bin/bash
# cu22-head's GPU call (twenty-second session): the small models' LM head launches
# (TESSERA_CUDA_GEMV_HEAD, k_matmul_bf16.cu GemvHeadMode: plain launches with N >= 32768 on a
# persistent grid). Carries .dev/bundle22f.tar.xz (bundle/: the engine, suites and "old" = its CUDA
# plugin) and .dev/cu22-head/head22.tar.xz (head22/: this tree's stripped CUDA plugin = "new",
# its cuda_gemv_lab, this script).
# Steps (none starts past $DEADLINE s): lab --head22 (plain reads of the heads' bytes, the heads'
# launches) for HEAD modes 0..4 and blocks-an-SM caps; greedy md5 old / new (0.5B, 1B); tg128
# $SIDES on 1B then 0.5B; why the norm + head fusion is refused (FUSE_DEBUG); lab bit checks on new
# (default mode, then HEAD=3 / 4 if time is left); CUDA suites on new.
# Call 1 (08:08 UTC): the defaults. Call 2 (the final plugin: HEAD unset = 2 from K = 2048):
#   MODES="0 1 0 1" BPS=- SIDES1B="old new h1 h1 new old" SIDES05="old new new old" FUSE=0
#   CHECK_MODES=default DEADLINE=60
# Run: `tar xJf .dev/bundle22f.tar.xz -C /tmp && tar xJf .dev/cu22-head/head22.tar.xz -C /tmp &&
#       OUT=$OUT bash /tmp/head22/head22_gpu.sh`
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-120}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
G=/tmp/head22 B=/tmp/bundle
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
waitf() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
if [ "${LAB:-1}" = 1 ]; then
  echo "=== lab --head22 $(date +%T)"
  GEMV_LAB_TAG=default timeout 40 $G/cuda_gemv_lab --head22 >> $OUT/lab_head22.log 2>&1
  # MODES / BPS: "-" = none.
  for m in ${MODES:-0 2 3 4 0 1}; do [ $m = - ] && continue
    TESSERA_CUDA_GEMV_HEAD=$m GEMV_LAB_TAG=h$m GEMV_LAB_HEAD_GEMV_ONLY=1 GEMV_LAB_DEC17_ONLY=05B-head,1B-head \
      timeout 30 $G/cuda_gemv_lab --head22 >> $OUT/lab_head22.log 2>&1
  done
  for b in ${BPS:-1 2 3 4}; do [ $b = - ] && continue
    TESSERA_CUDA_GEMV_HEAD=1 TESSERA_CUDA_GEMV_HEAD_BPS=$b GEMV_LAB_TAG=h1b$b GEMV_LAB_HEAD_GEMV_ONLY=1 \
      GEMV_LAB_DEC17_ONLY=05B-head,1B-head timeout 30 $G/cuda_gemv_lab --head22 >> $OUT/lab_head22.log 2>&1
  done
  grep -E "^read" $OUT/lab_head22.log | awk '{print "  " $2, $3, $4, $6, $7, $8, $9, $(NF-2), $NF}'
  grep -E "^dec17" $OUT/lab_head22.log | sort -s -k2,2 | awk '{printf "  %s %s %s %s\n", $2, $3, $4, $6}'
  el
fi
rm -rf /tmp/new && mkdir -p /tmp/new && cp -r $B/bin $B/lib /tmp/new/ &&
  cp $G/libtessera_backend_cuda.so /tmp/new/lib/tessera/backends/libtessera_backend_cuda.so
side_dir() { case $1 in old) echo $B;; *) echo /tmp/new;; esac; }
side_env() { case $1 in h[0-9]) echo TESSERA_CUDA_GEMV_HEAD=${1#h};; *) echo X_NONE=1;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
PR="the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog"
md5s() { local s side d
  for s in "$@"; do waitf $s
    for side in old new; do d=$(side_dir $side)
      LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
      echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
    done
  done; el; }
round() { local s=$1 side; shift; left || return; waitf $s; echo "=== $s tg128 $(date +%T)"
  for side in "$@"; do ab $side /tmp/$s -p 16 -n 128 -r 2; done; el; }
echo "=== greedy md5 (48 tokens) old / new"
md5s qwen2.5-0.5b llama-3.2-1b
round llama-3.2-1b ${SIDES1B:-old new h0 h2 h3 h3 h2 h0 new old}
round qwen2.5-0.5b ${SIDES05:-old new h0 h2 h3 h3 h2 h0 new old}
if [ "${FUSE:-1}" = 1 ] && left; then
  echo "=== norm + head fusion (FUSE_DEBUG, new, 0.5B / 1B)"
  for s in qwen2.5-0.5b llama-3.2-1b; do
    TESSERA_CUDA_FUSE_DEBUG=1 LD_LIBRARY_PATH=/tmp/new/lib timeout 30 /tmp/new/bin/engine bench --backend cuda /tmp/$s -p 16 -n 8 -r 1 2>&1 |
      grep -E "cuda fuse" | sed "s/^/  $s /"
  done
fi
if left; then
  P=/tmp/new/lib/tessera/backends
  echo "=== CUDA suites (new) $(date +%T)"
  bash -c ". backends/cuda/lab/lab_common.sh; B=$B P=$P OUT=/tmp cuda_suites"
  cp /tmp/tests.log $OUT/tests.log
  echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
  el
fi
for m in ${CHECK_MODES:-default 3 4}; do
  left || break
  echo "=== lab bit checks (new lab, HEAD=$m) $(date +%T)"
  env $([ $m = default ] && echo X_NONE=1 || echo TESSERA_CUDA_GEMV_HEAD=$m) GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 \
    timeout 40 $G/cuda_gemv_lab --quick > $OUT/lab_checks_$m.log 2>&1
  echo "rc=$? same-bits lines $(grep -c 'same bits' $OUT/lab_checks_$m.log), checked lines $(grep -c '^checked' $OUT/lab_checks_$m.log), $(grep -c 'DIFFERENT' $OUT/lab_checks_$m.log) DIFFERENT"
  grep -E "failures|rror|FAILED" $OUT/lab_checks_$m.log | tail -3; el
done
echo "=== done"; el
