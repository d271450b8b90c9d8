#!/bin/bash
# cuda-x64's GPU calls (tenth session), from the repo root, carrying .dev/bundle-cuda-x64.tar.gz
# (the tree's bundle + cuda_gemm_lab and the suites' binaries; head/libtessera_backend_cuda.so =
# HEAD's CUDA plugin, picked through TESSERA_BACKEND_PATH, which the loader searches first).
# PHASE=1: the grouped GEMM lab (bits + cold timings), the members checks, per-node profiles of a
# greedy x64 step (0.5B / 1B, HEAD and new), engine tg128x64 greedy new vs HEAD. PHASE=2: the CUDA
# suites, the labs again, engine A/B interleaved: tg128x64 greedy (8B also with the evict_first
# weight loads / the chunk-sum discards on) and sampled, batch-1 tg128.
# Steps stop starting past $DEADLINE s.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-250}; PHASE=${PHASE:-1}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
tar xzf .dev/bundle-cuda-x64.tar.gz -C .dev
B=.dev/bundle-cuda-x64; export LD_LIBRARY_PATH=$PWD/$B/lib; P=$PWD/$B/lib/tessera/backends
HEADSO=$PWD/$B/head/libtessera_backend_cuda.so
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
(for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
wait_ck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }
# eb VARIANT ARGS...: engine bench with the new plugin or HEAD's.
eb() { local v=$1; shift
  if [ $v = head ]; then TESSERA_BACKEND_PATH=$HEADSO timeout 100 $B/bin/engine bench "$@" 2>&1
  else timeout 100 $B/bin/engine bench "$@" 2>&1; fi | grep -E "\| (pp|tg)[0-9]|rror" | sed "s/^/  $v /"; }
lab() { echo "=== lab $1"; timeout ${2:-90} $B/bin/cuda_gemm_lab $1 > $OUT/lab$1.log 2>&1; echo "rc=$?"; }
if [ $PHASE = 2 ]; then
  . backends/cuda/lab/lab_common.sh
  echo "=== CUDA suites"; cuda_suites; cp $OUT/tests.log $OUT/cuda_tests.log
  TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda \
    TESSERA_DEFAULT_MODEL=$PWD/models/default TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models \
    timeout 90 $B/bin/server_greedy_test --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED)|Failure" | head -5
fi
lab --group 60; grep -E "failures|BITS|FAIL" $OUT/lab--group.log | head -5
lab --addfuse 90; grep -E "^members|failures" $OUT/lab--addfuse.log
echo "checks $(( $(date +%s) - T0 )) s"
if [ $PHASE = 1 ]; then
  for s in qwen2.5-0.5b llama-3.2-1b; do
    wait_ck $s
    for v in head new; do
      left || break
      echo "=== profile $s $v"
      if [ $v = head ]; then export TESSERA_BACKEND_PATH=$HEADSO; fi
      TESSERA_CUDA_PROFILE=1 TESSERA_CUDA_GRAPHS=0 timeout 60 $B/bin/engine bench --backend cuda /tmp/$s \
        -p 0 -n 16 --parallel 64 --greedy > $OUT/prof_${s}_$v.log 2>&1
      unset TESSERA_BACKEND_PATH
      grep "cuda profile" $OUT/prof_${s}_$v.log | head -24
    done
  done
  for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
    wait_ck $s
    for v in head new; do left && { echo "=== $s x64 greedy $v"; eb $v --backend cuda /tmp/$s -p 0 -n 128 --parallel 64 --greedy; }; done
  done
  echo "total $(( $(date +%s) - T0 )) s"; exit 0
fi
# PHASE 2, in priority order (later steps are cut by DEADLINE).
x64() { echo "=== $1 x64 $3 $2"; eb $2 --backend cuda /tmp/$1 -p 0 -n 128 --parallel 64 $4; }
wait_ck llama-3.1-8b
# (Call 2 ran with TESSERA_CUDA_TMA_EVICT / _DISCARD on by default and these two variants at =0;
# both now default off, so the variants switch them on.)
for v in head new evict1 discard1; do
  left || break
  case $v in
    evict1) TESSERA_CUDA_TMA_EVICT=1 x64 llama-3.1-8b new greedy-evict1 --greedy ;;
    discard1) TESSERA_CUDA_TMA_DISCARD=1 x64 llama-3.1-8b new greedy-discard1 --greedy ;;
    *) x64 llama-3.1-8b $v greedy --greedy ;;
  esac
done
for s in llama-3.2-1b qwen2.5-0.5b; do for v in head new; do left && x64 $s $v greedy --greedy; done; done
for v in head new; do left && x64 llama-3.1-8b $v sampled ""; done
for v in head new; do left && { echo "=== llama-3.1-8b tg128 $v"; eb $v --backend cuda /tmp/llama-3.1-8b -p 16 -n 128 -r 2; }; done
for s in llama-3.2-1b qwen2.5-0.5b; do for v in head new; do left && x64 $s $v sampled ""; done; done
for v in new head new; do left && x64 llama-3.1-8b $v greedy-r2 --greedy; done
for s in llama-3.2-1b qwen2.5-0.5b; do for v in head new; do left && { echo "=== $s tg128 $v"; eb $v --backend cuda /tmp/$s -p 16 -n 128 -r 2; }; done; done
echo "total $(( $(date +%s) - T0 )) s"
