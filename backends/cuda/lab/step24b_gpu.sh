#!/bin/bash
# cu24-step's second GPU call (twenty-fourth session, H200): the final plugin. Call 1
# (step24_gpu.sh) measured the eager download (kept) and the upload scatter kernel (not kept:
# slower than cudaMemcpyBatchAsync on this host); here "new" = the eager download + the signal
# wait (TESSERA_CUDA_SYNC_FLAG: Drain spins on a mapped word a one-thread kernel stores after the
# step, instead of the error word's copy + cudaStreamSynchronize), "sf0" = the same plugin with
# TESSERA_CUDA_SYNC_FLAG=0 (the eager download alone: the delivered tree, which lacks the signal
# wait, not kept: results/step24/signal_wait_not_kept.diff), "old" = bundle24's plugin (HEAD
# f693230).
# Steps (none starts past $DEADLINE s): graph tests (flag on / off); md5 0.5B; tg128 0.5B old new
# sf0 sf0 new old; step times 0.5B; CUDA suites; md5 + tg128 1B; tg128 --greedy 0.5B; 0.5B x64
# greedy; md5 8B.
# Run: `mkdir -p /tmp/g && tar xf .dev/cu24-step/gpu.tar -C /tmp/g && OUT=$OUT bash /tmp/g/step24b_gpu.sh`
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-70}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
need=""; for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do [ -f /tmp/$s.done ] || need="$need $s"; done
[ -n "$need" ] && make_checkpoints $need
G=/tmp/g; W=/tmp/w; rm -rf $W && mkdir -p $W && tar xJf .dev/bundle24.tar.xz -C $W
B=$W/bundle
mkdir -p $W/new && cp -r $B/bin $B/lib $W/new/ && xz -dc $G/libtessera_backend_cuda.new.so.xz > $W/new/lib/tessera/backends/libtessera_backend_cuda.so
cp $G/cuda_argmax_graph_test $W/new/bin/  # + EagerDownloadsFollowTheSteps
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
echo "checkpoints made here:${need:- none (warm machine)}"
waitf() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done; }
side_dir() { case $1 in old) echo $B;; *) echo $W/new;; esac; }
side_env() { case $1 in
  before) echo TESSERA_CUDA_EAGER_DOWNLOAD=0 TESSERA_CUDA_SYNC_FLAG=0;;
  sf0) echo TESSERA_CUDA_SYNC_FLAG=0;;
  *) echo X_NONE=1;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
PROMPT="the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog"
md5s() { local s side d
  for s in "$@"; do left || return; waitf $s
    for side in old new; do d=$(side_dir $side)
      LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "$PROMPT" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
      echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
    done
  done; el; }
steps() { local s=$1 side=$2; shift 2; left || return; waitf $s
  echo "--- step times $s $side $*" | tee -a $OUT/steps.log
  env $(side_env $side) TESSERA_CUDA_STEP_TIMES=1 LD_LIBRARY_PATH=$W/new/lib timeout 60 \
    $W/new/bin/engine bench --backend cuda /tmp/$s -p 16 -n 128 -r 1 "$@" 2>&1 |
    grep -E "\| tg|rror|cuda step times" >> $OUT/steps.log
  grep -A20 -F -- "--- step times $s $side $*" $OUT/steps.log | grep -E "\| tg|median" | head -14 |
    sed -E 's/cuda step times: //; s/^/    /'; }
round() { local s=$1; shift; left || return; waitf $s; echo "=== $s tg128 $* $(date +%T)"
  for side in "$@"; do ab $side /tmp/$s -p 16 -n 128 -r 2; done; el; }
P=$W/new/lib/tessera/backends
for f in 1 0; do
  echo "  graph tests SYNC_FLAG=$f: $(TESSERA_CUDA_SYNC_FLAG=$f TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so LD_LIBRARY_PATH=$W/new/lib timeout 60 $W/new/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure|step " | head -4 | tr '\n' ' ')"
done
echo "=== greedy md5 (48 tokens) old / new"
md5s qwen2.5-0.5b
round qwen2.5-0.5b old new sf0 sf0 new old
echo "=== step times 0.5B (before = EAGER_DOWNLOAD=0 SYNC_FLAG=0; sf0 = eager only)"
steps qwen2.5-0.5b before
steps qwen2.5-0.5b sf0
steps qwen2.5-0.5b new
el
if left; then
  echo "=== CUDA suites (new) $(date +%T)"
  bash -c ". backends/cuda/lab/lab_common.sh; B=$W/new P=$P OUT=/tmp cuda_suites"
  cp /tmp/tests.log $OUT/tests.log; el
fi
md5s llama-3.2-1b
round llama-3.2-1b old new new old
if left; then echo "=== 0.5B tg128 --greedy $(date +%T)"
  for side in old new new old; do ab $side /tmp/qwen2.5-0.5b -p 16 -n 128 -r 2 --greedy; done; el; fi
if left; then echo "=== 0.5B x64 greedy $(date +%T)"
  for side in old new new old; do ab $side /tmp/qwen2.5-0.5b -p 0 -n 64 --parallel 64 --greedy -r 1; done; el; fi
md5s llama-3.1-8b
steps llama-3.2-1b before
steps llama-3.2-1b new
echo "=== done"; el
