#!/bin/bash
# cu24-chain's GPU call (twenty-fourth session, H200): ROPE q/k + KV_WRITE k/v in the epilogue of
# the norm + q/k/v GEMV launch (TESSERA_CUDA_FUSE_ROPE_EPI, default on; =0 = before). Carries
# .dev/bundle24.tar.xz (HEAD's bundle: "old") and .dev/cu24-chain/chain24.tar.xz (chain24/: the new
# plugin, its cuda_gemv_lab, this script). Steps (none starts past $DEADLINE s): SASS of the ROPE
# kernel's rotation (old plugin) and registers of the new rope kernels; lab --rope24 (bits of every
# rounding form of x0 c - x1 s against ROPE x2 + KV_WRITE x2; the matching form is exported as
# TESSERA_CUDA_ROPE_EPI_FORM for the engine runs when the default does not match); which nodes
# fuse (FUSE_DEBUG, per-op profile); greedy md5 old / new (0.5B, 1B); tg128 old new new old (0.5B,
# 1B); CUDA suites + graph replay + lab --quick bits on new; 8B md5 old / new and tg128 old new.
# Run: `rm -rf /tmp/c24 && mkdir -p /tmp/c24 && tar xJf .dev/bundle24.tar.xz -C /tmp/c24 && tar xJf
# .dev/cu24-chain/chain24.tar.xz -C /tmp/c24 && OUT=$OUT bash /tmp/c24/chain24/chain24_gpu.sh`.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
W=/tmp/c24; G=$W/chain24; B=$W/bundle
. backends/cuda/lab/lab_common.sh
need=""; for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do [ -f /tmp/$s.done ] || need="$need $s"; done
[ -n "$need" ] && make_checkpoints $need
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
waitf() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
rm -rf $W/new && mkdir -p $W/new && cp -r $B/bin $B/lib $W/new/ &&
  cp $G/libtessera_backend_cuda.so $W/new/lib/tessera/backends/libtessera_backend_cuda.so
echo "=== SASS: the ROPE kernel's rotation (old plugin); registers of the rope kernels (new)"
CUO=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
if [ -n "$CUO" ]; then
  (mkdir -p /tmp/cub && cd /tmp/cub && timeout 30 $CUO -xelf all $B/lib/tessera/backends/libtessera_backend_cuda.so > /dev/null 2>&1
   f=$(grep -l Rope2Kernel /tmp/cub/*.cubin 2>/dev/null | head -1)
   [ -n "$f" ] && timeout 20 $CUO -sass $f | awk '/Function : .*Rope2Kernel/{p=1} /Function : /&&!/Rope2Kernel/{p=0} p' > $OUT/rope2_sass.txt
   grep -nE "FMUL|FFMA|FADD" $OUT/rope2_sass.txt | tail -12)
  timeout 30 $CUO -res-usage $G/libtessera_backend_cuda.so 2>/dev/null | grep -A1 -E "GemvBf16Kernel.*Lb1EEEv" | grep -E "REG|STACK" | head -4
else
  echo "  no cuobjdump"
fi
el
echo "=== lab --rope24 (new lab) $(date +%T)"
timeout 60 $G/cuda_gemv_lab --rope24 > $OUT/lab_rope24.log 2>&1; echo "  rc=$?"
grep -E "rope_epi|failures" $OUT/lab_rope24.log
FORM=""
if ! grep -qE "form=-1 DIFFERENT" $OUT/lab_rope24.log; then FORM=default; else
  for f in 0 1 2; do
    if ! grep -E "checked rope_epi .* form=$f " $OUT/lab_rope24.log | grep -q DIFFERENT &&
       grep -qE "checked rope_epi .* form=$f same" $OUT/lab_rope24.log; then FORM=$f; break; fi
  done
fi
echo "  form for the engine: ${FORM:-none matched}"
NEWENV="X_NONE=1"
case $FORM in 0|1|2) NEWENV="TESSERA_CUDA_ROPE_EPI_FORM=$FORM";; esac
el
side_dir() { case $1 in old) echo $B;; *) echo $W/new;; esac; }
side_env() { case $1 in old) echo X_NONE=1;; off) echo TESSERA_CUDA_FUSE_ROPE_EPI=0;; *) echo $NEWENV;; esac; }
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
round() { local s=$1 side; shift; left || return; waitf $s; echo "=== $s tg128 $(date +%T)"
  for side in "$@"; do ab $side /tmp/$s -p 16 -n 128 -r 2; done; el; }
echo "=== which nodes fuse (new, 0.5B / 1B: FUSE_DEBUG refusals, per-op profile rows with ROPE)"
for s in qwen2.5-0.5b llama-3.2-1b; do waitf $s
  env $NEWENV TESSERA_CUDA_FUSE_DEBUG=1 TESSERA_CUDA_PROFILE=1 LD_LIBRARY_PATH=$W/new/lib timeout 60 \
    $W/new/bin/engine bench --backend cuda /tmp/$s -p 16 -n 4 -r 1 > $OUT/profile_$s.log 2>&1
  echo "  $s rc=$?"; grep -E "refused|ROPE|KV_WRITE|ATTENTION" $OUT/profile_$s.log | head -12
done
el
echo "=== greedy md5 (48 tokens) old / new"
md5s qwen2.5-0.5b llama-3.2-1b
round qwen2.5-0.5b old new new old
round llama-3.2-1b old new new old
md5s llama-3.1-8b
P=$W/new/lib/tessera/backends
if left; then
  echo "=== lab bit checks (new lab) $(date +%T)"
  [ "$NEWENV" != "X_NONE=1" ] && export $NEWENV
  GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 60 $G/cuda_gemv_lab --quick > $OUT/lab_checks.log 2>&1
  echo "rc=$? same-bits lines $(grep -c 'same bits' $OUT/lab_checks.log), checked lines $(grep -c '^checked' $OUT/lab_checks.log), $(grep -c 'DIFFERENT' $OUT/lab_checks.log) DIFFERENT"
  grep -E "rope_epi|failures|rror" $OUT/lab_checks.log | tail -4; el
fi
if left; then
  echo "=== CUDA suites (new) $(date +%T)"
  bash -c ". backends/cuda/lab/lab_common.sh; B=$B P=$P OUT=/tmp cuda_suites"
  cp /tmp/tests.log $OUT/tests.log
  echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
  el
fi
round llama-3.1-8b old new
echo "=== done"; el
