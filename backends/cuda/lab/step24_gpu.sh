#!/bin/bash
# cu24-step's GPU call (twenty-fourth session, H200): the decode step boundary (head end -> next
# step's first GEMV). "old" = bundle24's plugin (HEAD f693230), "new" = the same bundle with
# cu24-step's plugin: the eager download (TESSERA_CUDA_EAGER_DOWNLOAD, the next execute enqueues
# the logits / ids copy behind its kernels, so a step waits once) and the upload scatter kernel
# (TESSERA_CUDA_UPLOAD_KERNEL, one kernel launch instead of cudaMemcpyBatchAsync for the held
# inputs; not kept, not in the delivered tree: results/step24/upload_kernel_not_kept.diff); TESSERA_CUDA_STEP_TIMES=1 prints the boundary's host split; TESSERA_CUDA_SYNC=spin|
# blocking sets the context's wait. Carries .dev/bundle24.tar.xz and .dev/cu24-step/gpu.tar
# (the new plugin, the new cuda_argmax_graph_test, this script). Steps (none starts past $DEADLINE s): md5 0.5B old/new; step
# times 0.5B (before = both knobs 0, after; logits and --greedy); tg128 0.5B old new new old;
# 1B md5 + tg128 old new new old; 0.5B x64 greedy old new new old; CUDA suites + graph tests;
# knob split (0.5B tg128: EAGER_DOWNLOAD=0, UPLOAD_KERNEL=0, SYNC=blocking, SYNC=spin); 8B md5
# old/new; 1B step times.
# Run: `mkdir -p /tmp/g && tar xf .dev/cu24-step/gpu.tar -C /tmp/g && OUT=$OUT bash /tmp/g/step24_gpu.sh`
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-95}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
need=""; for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do [ -f /tmp/$s.done ] || need="$need $s"; done
[ -n "$need" ] && make_checkpoints $need
G=/tmp/g; W=/tmp/w; rm -rf $W && mkdir -p $W && tar xJf .dev/bundle24.tar.xz -C $W
B=$W/bundle
mkdir -p $W/new && cp -r $B/bin $B/lib $W/new/ && xz -dc $G/libtessera_backend_cuda.new.so.xz > $W/new/lib/tessera/backends/libtessera_backend_cuda.so
cp $G/cuda_argmax_graph_test $W/new/bin/  # + EagerDownloadsAndScatteredUploadsFollowTheSteps
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
echo "checkpoints made here:${need:- none (warm machine)}"
waitf() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done; }
side_dir() { case $1 in old) echo $B;; *) echo $W/new;; esac; }
side_env() { case $1 in
  before) echo TESSERA_CUDA_EAGER_DOWNLOAD=0 TESSERA_CUDA_UPLOAD_KERNEL=0;;
  eager0) echo TESSERA_CUDA_EAGER_DOWNLOAD=0;;
  upk0) echo TESSERA_CUDA_UPLOAD_KERNEL=0;;
  spin) echo TESSERA_CUDA_SYNC=spin;;
  blocking) echo TESSERA_CUDA_SYNC=blocking;;
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
round() { local s=$1; shift; left || return; waitf $s; echo "=== $s tg128 $(date +%T)"
  for side in "$@"; do ab $side /tmp/$s -p 16 -n 128 -r 2; done; el; }
echo "=== greedy md5 (48 tokens) old / new"
md5s qwen2.5-0.5b
echo "=== step times 0.5B (new plugin; before = EAGER_DOWNLOAD=0 UPLOAD_KERNEL=0)"
steps qwen2.5-0.5b before
steps qwen2.5-0.5b new
steps qwen2.5-0.5b before --greedy
steps qwen2.5-0.5b new --greedy
el
round qwen2.5-0.5b old new new old
md5s llama-3.2-1b
round llama-3.2-1b old new new old
if left; then waitf qwen2.5-0.5b; echo "=== 0.5B x64 greedy $(date +%T)"
  for side in old new new old; do ab $side /tmp/qwen2.5-0.5b -p 0 -n 64 --parallel 64 --greedy -r 1; done; el; fi
if left; then
  P=$W/new/lib/tessera/backends
  echo "=== CUDA suites (new) $(date +%T)"
  bash -c ". backends/cuda/lab/lab_common.sh; B=$W/new P=$P OUT=/tmp cuda_suites"
  cp /tmp/tests.log $OUT/tests.log
  echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so LD_LIBRARY_PATH=$W/new/lib timeout 60 $W/new/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
  el
fi
round qwen2.5-0.5b eager0 upk0 blocking spin
md5s llama-3.1-8b
echo "=== step times 1B"
steps llama-3.2-1b before
steps llama-3.2-1b new
echo "=== done"; el
