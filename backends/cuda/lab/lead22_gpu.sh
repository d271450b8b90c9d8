#!/bin/bash
# The lead's check of the twenty-second session's tree on the H100, one call: this tree's CUDA
# plugin against HEAD bcdacb7's (.dev/old22.tar.xz: the session start; the engine is this tree's on
# both sides). From the repo root, carrying .dev/bundle22f.tar.xz (ci/bundle.sh of build/perf + test
# binaries and cuda_gemv_lab), .dev/lab22f_bench.tar.xz (bin/bench_cuda_kernels) and
# .dev/old22.tar.xz:
#   1. CUDA op conformance / text golden / server_scheduler_test, argmax graph replay (new plugin)
#   2. lab bits: cuda_gemv_lab --quick (GEMV rows == GEMM rows, fused prologues), bench_cuda_kernels
#      --attention-tc 1024 checks (the batch tiles before and now, PDL poison cases)
#   3. greedy md5 old / new, CUDA, a 36-token prompt, 48 tokens (0.5B, 1B, 8B)
#   4. interleaved old / new: tg128 (`-p 16 -n 128 -r 2`) and tg64x64 greedy (`-p 0 -n 64
#      --parallel 64 --greedy -r 1`) on 0.5B / 1B / 8B
#   5. knob pairs on the new plugin: 8B tg128 TESSERA_CUDA_GEMV_O2=0 vs default (cu22-8b), 1B
#      tg128 TESSERA_CUDA_GEMV_XP1W=0 vs default (cu22-small)
# No step starts past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
tar xJf ${BUNDLE:-.dev/bundle22f.tar.xz} -C .dev && tar xJf ${BENCH:-.dev/lab22f_bench.tar.xz} -C .dev/bundle
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
O=/tmp/old; rm -rf $O && cp -r $B $O && mkdir -p /tmp/x && tar xJf ${OLD:-.dev/old22.tar.xz} -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so $O/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 200 ]; do sleep 1; i=$((i + 1)); done; }
echo "=== CUDA suites (new) $(t)"
cuda_suites
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 > $OUT/argmax.log 2>&1
echo "cuda_argmax_graph_test rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/argmax.log | tr '\n' ' ')"
echo "=== lab bits $(t)"
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 60 $B/bin/cuda_gemv_lab --quick > $OUT/lab_gemv.log 2>&1
echo "gemv --quick rc=$? $(grep -cE 'same bits' $OUT/lab_gemv.log) same-bits lines; $(grep -c DIFFERENT $OUT/lab_gemv.log) DIFFERENT; $(grep -E 'failures' $OUT/lab_gemv.log | tail -1)"
timeout 90 $B/bin/bench_cuda_kernels --attention-tc 1024 checks > $OUT/lab_attn.log 2>&1
echo "attention-tc checks rc=$? $(grep -E 'summary' $OUT/lab_attn.log | tail -1)"
eng() {  # eng SIDE ARGS...: the engine with the plugin of SIDE (old / new)
  local d=$B; [ $1 = old ] && d=$O; shift
  LD_LIBRARY_PATH=$d/lib timeout 120 $d/bin/engine "$@"; }
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  wait_ck $s; echo "=== $s $(t)"
  for side in old new; do
    eng $side --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 2> /dev/null > /tmp/md_${s}_$side.txt
    echo "  $side cuda md5 $(md5sum < /tmp/md_${s}_$side.txt | cut -c1-12)"
  done
  for side in old new new old; do
    left && eng $side bench --backend cuda /tmp/$s -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | sed "s/^/  $side /"
  done
  X="old new new old"; [ $s = llama-3.1-8b ] && X="old new"
  for side in $X; do
    left && eng $side bench --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1 |
      grep -E "\| tg|rror" | sed "s/^/  $side x64 /"
  done
done
echo "=== knob pairs (new plugin) $(t)"
for k in "TESSERA_CUDA_GEMV_O2=0 llama-3.1-8b" "X_NONE=1 llama-3.1-8b" "TESSERA_CUDA_GEMV_XP1W=0 llama-3.2-1b" \
         "X_NONE=1 llama-3.2-1b" "TESSERA_CUDA_GEMV_XP1W=0 llama-3.2-1b"; do
  set -- $k
  left && env $1 LD_LIBRARY_PATH=$B/lib timeout 120 $B/bin/engine bench --backend cuda /tmp/$2 -p 16 -n 128 -r 2 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/  $2 $1 /"
done
echo "total $(t)"
