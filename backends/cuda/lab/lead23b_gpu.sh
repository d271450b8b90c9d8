#!/bin/bash
# The lead's check of the twenty-third session's tree on the H200, one call: this tree's CUDA and
# Vulkan plugins (.dev/new23.tar.xz: new23/ = the stripped plugins + cuda_gemv_lab of build/perf)
# against HEAD db77bab's (.dev/bundle23.tar.xz, the session start; the engine did not change, so
# "new" = bundle23 with the two plugins and the lab swapped in). Carries .dev/bundle23.tar.xz,
# .dev/new23.tar.xz and .gl:
#   1. CUDA op conformance / text golden / server_scheduler_test / argmax graph replay (new plugin,
#      default and TESSERA_CUDA_GEMV_LINES=32); cuda_gemv_lab --quick with LINES unset, 32 (the
#      card rule) and 31 (every kind at every shape and M): GEMV rows == GEMM rows
#   2. greedy md5 old / new (CUDA: 0.5B, 1B, 8B, 8B with LINES=32; Vulkan 8B)
#   3. interleaved: 8B tg128 old / new / new LINES=32; 8B tg64x64 greedy old / new; 0.5B and 1B
#      tg128 old / new; Vulkan 8B tg128 old / new beside CUDA
# No step starts past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-230}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b llama-3.2-1b qwen2.5-0.5b
rm -rf /tmp/bundle /tmp/new23 && tar xJf .dev/bundle23.tar.xz -C /tmp && tar xJf .dev/new23.tar.xz -C /tmp
O=/tmp/bundle; N=/tmp/newb; rm -rf $N && cp -r $O $N
cp /tmp/new23/libtessera_backend_cuda.so /tmp/new23/libtessera_backend_vulkan.so $N/lib/tessera/backends/
cp /tmp/new23/cuda_gemv_lab $N/bin/
B=$N; P=$N/lib/tessera/backends; export LD_LIBRARY_PATH=$N/lib
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done; }
echo "=== CUDA suites (new, default) $(t)"
cuda_suites
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 > $OUT/argmax.log 2>&1
echo "cuda_argmax_graph_test rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/argmax.log | tr '\n' ' ')"
echo "=== CUDA suites (new, LINES=32) $(t)"
mkdir -p $OUT/l32; (export TESSERA_CUDA_GEMV_LINES=32; OUT=$OUT/l32; cuda_suites)
echo "=== lab bits $(t)"
for m in unset 32 31; do
  e=X_NONE=1; [ $m != unset ] && e=TESSERA_CUDA_GEMV_LINES=$m
  env $e GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 80 $B/bin/cuda_gemv_lab --quick > $OUT/lab_gemv_$m.log 2>&1
  echo "gemv --quick LINES=$m rc=$? $(grep -cE 'same bits' $OUT/lab_gemv_$m.log) same-bits lines; $(grep -c DIFFERENT $OUT/lab_gemv_$m.log) DIFFERENT; $(grep -E 'failures' $OUT/lab_gemv_$m.log | tail -1)"
done
eng() {  # eng SIDE ARGS...: SIDE old / new / l32 (new with LINES=32)
  local d=$N e=X_NONE=1; [ $1 = old ] && d=$O; [ $1 = l32 ] && e=TESSERA_CUDA_GEMV_LINES=32; shift
  env $e LD_LIBRARY_PATH=$d/lib timeout 120 $d/bin/engine "$@"; }
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
wait_ck llama-3.1-8b; echo "=== 8B $(t)"
for side in old new l32; do
  eng $side --backend cuda run /tmp/llama-3.1-8b "$PR" --raw -n 48 --temperature 0 2> /dev/null > /tmp/md_8b_$side.txt
  echo "  $side cuda md5 $(md5sum < /tmp/md_8b_$side.txt | cut -c1-12)"
done
for side in old new; do
  eng $side --backend vulkan run /tmp/llama-3.1-8b "t1 t2 t3 t4" --raw -n 32 --temperature 0 2> /dev/null > /tmp/v_8b_$side.txt
  echo "  $side vulkan md5 $(md5sum < /tmp/v_8b_$side.txt | cut -c1-12)"
done
for side in old new l32 l32 new old l32; do
  left && eng $side bench --backend cuda /tmp/llama-3.1-8b -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | sed "s/^/  $side /"
done
for side in old new new old; do
  left && eng $side bench --backend cuda /tmp/llama-3.1-8b -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/  $side x64 /"
done
for side in old new new old; do
  left && eng $side bench --backend vulkan /tmp/llama-3.1-8b -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | sed "s/^/  $side vulkan /"
done
for s in qwen2.5-0.5b llama-3.2-1b; do
  wait_ck $s; echo "=== $s $(t)"
  for side in old new; do
    eng $side --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 2> /dev/null > /tmp/md_${s}_$side.txt
    echo "  $side cuda md5 $(md5sum < /tmp/md_${s}_$side.txt | cut -c1-12)"
  done
  for side in old new new old; do
    left && eng $side bench --backend cuda /tmp/$s -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | sed "s/^/  $side /"
  done
done
echo "total $(t)"
