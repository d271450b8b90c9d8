#!/bin/bash
# cu-dec18b's GPU call (eighteenth session, second round), from the repo root, carrying
# .dev/cu-dec18b/bundle.tar.xz: .dev/bundle18.tar.xz (HEAD 7b7add3's engine, CPU plugin, tests)
# less its Vulkan parts and cuda_gemm_lab, with this change's CUDA plugin and cuda_gemv_lab, HEAD's
# CUDA plugin (.dev/cur18c.tar.xz) as bundle/old/, this script as bundle/dec18b_gpu.sh.
# Change: the one-round-trip RMS_NORM prologue (GemvRmsStageRegs) also in GEMV blocks of 128 .. 255
# threads (the 0.5B norm + q/k/v and norm + head, 4 warps), TESSERA_CUDA_GEMV_RMSREG=2 (default);
# =1 cu-dec18's rule, =0 the two-step prologue.
# Steps: lab GEMV checks (memcmp), lab --dec17 RMSREG=1 / 2 alternating, CUDA suites + graph replay
# on the new plugin, greedy md5 old / new / RMSREG=1 (0.5B, 1B, 8B), tg128 old / new interleaved
# (-r 2, order alternating, 0.5B 4 rounds with RMSREG=1 as a third side, 1B / 8B 3 rounds).
# Run: `tar xJf .dev/cu-dec18b/bundle.tar.xz -C /tmp && OUT=$OUT bash /tmp/bundle/dec18b_gpu.sh`.
# Logs in $OUT (results/dec18b/).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-230}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
B=/tmp/bundle; [ -d $B/bin ] || tar xJf .dev/cu-dec18b/bundle.tar.xz -C /tmp
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf /tmp/oldp && cp -r $B /tmp/oldp && cp $B/old/libtessera_backend_cuda.so /tmp/oldp/lib/tessera/backends/
export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
md5sum /tmp/oldp/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so | cut -c1-12
side_dir() { [ $1 = old ] && echo /tmp/oldp || echo $B; }
side_env() { case $1 in r1) echo TESSERA_CUDA_GEMV_RMSREG=1 ;; *) echo X_NONE=1 ;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }

echo "=== lab GEMV + SWIGLU checks (memcmp), RMSREG default $(date +%T)"
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 150 $B/bin/cuda_gemv_lab --quick > $OUT/lab_checks.log 2>&1
echo "rc=$? shapes $(grep -c '^checked' $OUT/lab_checks.log); same-bits lines $(grep -c 'same bits' $OUT/lab_checks.log)"
grep -E "FAILED|DIFFERENT|^checks|_N896|_N20000|rms_K4096_n[13]_t" $OUT/lab_checks.log | head -24
el
for r in 1 2; do for m in 1 2 0; do
  echo "=== lab --dec17 RMSREG=$m (round $r) $(date +%T)"
  GEMV_LAB_TAG=RMSREG=$m TESSERA_CUDA_GEMV_RMSREG=$m timeout 60 $B/bin/cuda_gemv_lab --dec17 > /tmp/lab17.log 2>&1; echo "rc=$?"
  cat /tmp/lab17.log >> $OUT/lab_dec17.log; grep -E "^dec17 (05B|8B-norm|1B-norm)" /tmp/lab17.log
done; done
el
echo "=== CUDA suites (new plugin, default)"; cuda_suites
echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  waitck $s
  for side in old new r1; do d=$(side_dir $side)
    env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
  done
done
el
for r in 1 2 3 4; do
  for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
    left || break
    [ $s != qwen2.5-0.5b ] && [ $r = 4 ] && continue
    if [ $((r % 2)) = 1 ]; then S="old new"; else S="new old"; fi
    [ $s = qwen2.5-0.5b ] && { [ $((r % 2)) = 1 ] && S="old new r1" || S="r1 new old"; }
    echo "=== $s tg128 round $r ($S)"
    for side in $S; do ab $side /tmp/$s -p 16 -n 128 -r 2; done
    el
  done
done
echo "total $(( $(date +%s) - T0 )) s"
