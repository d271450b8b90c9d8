#!/bin/bash
# cu21-qkv's GPU call (twenty-first session): x pre-split (XP) for the 0.5B RMS_NORM + q/k/v
# launch (GemvXpOn). Carries .dev/cu21-qkv/qkv21.tar.xz (qkv21/: this tree's stripped CUDA plugin
# and cuda_gemv_lab, HEAD's lab as cuda_gemv_lab.old, libstdc++ / libgcc_s) and, for the engine
# steps (FULL=1 only), .dev/bundle21n.tar.xz (HEAD cf21359's bundle: "old" plugin). Not run in
# the twenty-first session (the device budget fell below cu21-qkv's floor before the call); the
# lab-only form (steps 1-2, ~10 s) is `PKG=.dev/cu21-qkv/qkv21l.tar.xz DEADLINE=7 CHECK_S=8`.
# Order (the call is short; no step starts past $DEADLINE s):
#   1. lab --dec17, 05B-norm-qkv only (GEMV_LAB_DEC17_ONLY), old new old new
#   2. lab bits: GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 cuda_gemv_lab --quick (new)
#   3. greedy md5 old / new, 0.5B, 36-token prompt, 48 tokens
#   4. CUDA suites (conformance / text golden / server_scheduler) with the new plugin
#   5. engine 0.5B tg128 old new new old (-p 16 -n 128 -r 2)
# Run: `tar xJf ${PKG:-.dev/cu21-qkv/qkv21.tar.xz} -C /tmp && OUT=$OUT bash /tmp/qkv21/qkv21_gpu.sh`
# from the repo root (FULL=1 DEADLINE=120 for steps 3-5).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-20}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
G=/tmp/qkv21; [ -d $G ] || tar xJf ${PKG:-.dev/cu21-qkv/qkv21.tar.xz} -C /tmp
FULL=${FULL:-0}
if [ $FULL = 1 ]; then
  (tar xJf .dev/bundle21n.tar.xz -C /tmp && touch /tmp/bundle.done) &
  (python3 bench/make_checkpoint.py --shape qwen2.5-0.5b --out /tmp/qwen2.5-0.5b > /tmp/ckpt.log 2>&1;
   touch /tmp/qwen2.5-0.5b.done) &
fi
export LD_LIBRARY_PATH=$G
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
echo "=== lab --dec17 05B-norm-qkv old new old new"
# "old" for the lab: HEAD's lab if carried, else this lab with TESSERA_CUDA_GEMV_XP=0, which runs
# HEAD's launch for the q/k/v line (its kernels are HEAD's, instruction for instruction).
for side in old new old new; do
  L=$G/cuda_gemv_lab; E=X_NONE=1
  [ $side = old ] && { [ -x $G/cuda_gemv_lab.old ] && L=$G/cuda_gemv_lab.old || E=TESSERA_CUDA_GEMV_XP=0; }
  env $E GEMV_LAB_DEC17_ONLY=05B-norm-qkv GEMV_LAB_TAG=$side timeout 20 $L --dec17 >> $OUT/lab_dec17.log 2>&1
done
grep -E "^dec17" $OUT/lab_dec17.log | awk '{print "  " $2, $3, $4}'
el
if left; then
  echo "=== lab bit checks (new)"
  GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout ${CHECK_S:-40} $G/cuda_gemv_lab --quick > $OUT/lab_checks.log 2>&1
  echo "rc=$? same-bits lines $(grep -c 'same bits' $OUT/lab_checks.log), checked lines $(grep -c '^checked' $OUT/lab_checks.log), $(grep -c 'DIFFERENT' $OUT/lab_checks.log) DIFFERENT"
  grep -E "failures|rror" $OUT/lab_checks.log | tail -2; el
fi
waitb() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done; }
[ $FULL = 1 ] || { echo "=== done (lab only)"; el; exit 0; }
B=/tmp/bundle; rm -rf /tmp/newp
left && { waitb bundle; cp -r $B /tmp/newp && cp $G/libtessera_backend_cuda.so /tmp/newp/lib/tessera/backends/; }
side_dir() { [ $1 = old ] && echo $B || echo /tmp/newp; }
eng() { local d; d=$(side_dir $1); shift; LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine "$@"; }
if left; then
  waitb qwen2.5-0.5b; echo "=== greedy md5 (0.5B, 48 tokens)"
  PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
  for side in old new; do
    eng $side --backend cuda run /tmp/qwen2.5-0.5b "$PR" --raw -n 48 --temperature 0 2> /dev/null > /tmp/md_$side.txt
    echo "  $side rc=$? md5 $(md5sum < /tmp/md_$side.txt | cut -c1-12) $(wc -c < /tmp/md_$side.txt) bytes"
  done; el
fi
if left; then
  echo "=== CUDA suites (new)"
  ( . backends/cuda/lab/lab_common.sh; B=/tmp/newp P=/tmp/newp/lib/tessera/backends OUT=$OUT cuda_suites ); el
fi
if left; then
  echo "=== 0.5B tg128 old new new old"
  for side in old new new old; do
    left && eng $side bench --backend cuda /tmp/qwen2.5-0.5b -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | sed "s/^/  $side /"
  done; el
fi
echo "=== done"; el
