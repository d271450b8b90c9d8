#!/bin/bash
# cu24-chain's second GPU call (twenty-fourth session, H200): the epilogue's operands (slot, pos,
# inv_freq, the rows' biases) copied global -> shared by cp.async at the task's start instead of
# loaded after the chunk loop (call 1: lab/chain24_gpu.sh, the epilogue cost ~0.7 us in the lab and
# the engine moved by +0.6-0.7%, inside its spread). Carries .dev/bundle24.tar.xz ("old") and
# .dev/cu24-chain/chain24b.tar.xz (chain24b/: the new plugin, its cuda_gemv_lab, this script).
# Steps (none starts past $DEADLINE s): registers of the rope kernels; lab --rope24 (bits, lab
# time); greedy md5 old / new (0.5B, 1B); tg128 old new new old and GPU time a step
# (PROFILE=exec) old / new / off (off = the new plugin with TESSERA_CUDA_FUSE_ROPE_EPI=0), 0.5B, 1B; CUDA suites + graph replay on new.
# Run: `rm -rf /tmp/c24 && mkdir -p /tmp/c24 && tar xJf .dev/bundle24.tar.xz -C /tmp/c24 && tar xJf
# .dev/cu24-chain/chain24b.tar.xz -C /tmp/c24 && OUT=$OUT bash /tmp/c24/chain24b/chain24b_gpu.sh`.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-55}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
W=/tmp/c24; G=$W/chain24b; B=$W/bundle
. backends/cuda/lab/lab_common.sh
need=""; for s in qwen2.5-0.5b llama-3.2-1b; do [ -f /tmp/$s.done ] || need="$need $s"; done
[ -n "$need" ] && make_checkpoints $need
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
waitf() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
rm -rf $W/new && mkdir -p $W/new && cp -r $B/bin $B/lib $W/new/ &&
  cp $G/libtessera_backend_cuda.so $W/new/lib/tessera/backends/libtessera_backend_cuda.so
CUO=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
[ -n "$CUO" ] && timeout 30 $CUO -res-usage $G/libtessera_backend_cuda.so 2>/dev/null |
  grep -A1 -E "GemvBf16Kernel.*Lb1EEEv" | grep -E "REG|STACK" | head -4
echo "=== lab --rope24 (new lab) $(date +%T)"
timeout 60 $G/cuda_gemv_lab --rope24 > $OUT/lab_rope24.log 2>&1; echo "  rc=$?"
grep -E "rope_epi|failures" $OUT/lab_rope24.log; el
side_dir() { case $1 in old) echo $B;; *) echo $W/new;; esac; }
side_env() { case $1 in off) echo TESSERA_CUDA_FUSE_ROPE_EPI=0;; *) echo X_NONE=1;; esac; }
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
round() { local s=$1 side; shift; left || return; waitf $s; echo "=== $s tg128 $(date +%T)"
  for side in "$@"; do ab $side /tmp/$s -p 16 -n 128 -r 2; done; el; }
echo "=== greedy md5 (48 tokens) old / new"
md5s qwen2.5-0.5b llama-3.2-1b
# GPU time a step (TESSERA_CUDA_PROFILE=exec: each execute between two events, synchronized).
execp() { local s=$1 side d; shift; left || return; waitf $s
  for side in "$@"; do d=$(side_dir $side)
    env $(side_env $side) TESSERA_CUDA_PROFILE=exec LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda /tmp/$s -p 16 -n 128 -r 1 > $OUT/exec_${s}_$side.log 2>&1
    echo "  exec $s $side: $(grep -E 'nodes \(gpu\)' $OUT/exec_${s}_$side.log | sed 's/cuda profile: *//' | tr -s ' ' | tr '\n' ';')"
  done; el; }
round qwen2.5-0.5b old new new old
execp qwen2.5-0.5b old new off
round llama-3.2-1b old new new old
execp llama-3.2-1b old new off
if left; then
  P=$W/new/lib/tessera/backends
  echo "=== CUDA suites (new) $(date +%T)"
  bash -c ". backends/cuda/lab/lab_common.sh; B=$B P=$P OUT=/tmp cuda_suites"
  cp /tmp/tests.log $OUT/tests.log
  echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
  el
fi
echo "=== done"; el
