#!/bin/bash
# The lead's check of the twenty-first session's tree on the H100, one call: this tree's CUDA (and
# Vulkan) plugins against HEAD b104649's (.dev/old21.tar.xz; the engine is this tree's on both
# sides). From the repo root, carrying .dev/bundle21n.tar.xz (ci/bundle.sh of build/perf + test
# and lab binaries), .dev/old21.tar.xz and, for VULKAN=1, .gl:
#   1. CUDA op conformance / text golden / server_scheduler_test, argmax graph replay (new plugin)
#   2. lab bits: cuda_gemv_lab --quick (GEMV rows == GEMM rows), cuda_gemm_lab --group / --addfuse /
#      --splitk
#   3. greedy md5 old / new, CUDA, a 36-token prompt, 48 tokens (0.5B, 1B, 8B)
#   4. interleaved old / new: tg128 (`-p 16 -n 128 -r 2`) and tg64x64 greedy (`-p 0 -n 64
#      --parallel 64 --greedy -r 1`) on 0.5B / 1B / 8B
#   5. (VULKAN=1) Vulkan suites, vulkan_attn_lab bits and timings old / new, md5, 8B tg128 old /
#      new beside CUDA
# No step starts past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-300}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
tar xJf ${BUNDLE:-.dev/bundle21n.tar.xz} -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
O=/tmp/old; rm -rf $O && cp -r $B $O && mkdir -p /tmp/x && tar xJf ${OLD:-.dev/old21.tar.xz} -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so /tmp/x/libtessera_backend_vulkan.so $O/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 200 ]; do sleep 1; i=$((i + 1)); done; }
echo "=== CUDA suites (new) $(t)"
cuda_suites
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 > $OUT/argmax.log 2>&1
echo "cuda_argmax_graph_test rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/argmax.log | tr '\n' ' ')"
echo "=== lab bits $(t)"
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 60 $B/bin/cuda_gemv_lab --quick > $OUT/lab_gemv.log 2>&1
echo "gemv --quick rc=$? $(grep -cE 'same bits' $OUT/lab_gemv.log) same-bits lines; $(grep -E 'failures' $OUT/lab_gemv.log | tail -1)"
timeout 60 $B/bin/cuda_gemm_lab --group > $OUT/lab_group.log 2>&1
echo "gemm --group rc=$? $(grep -E 'summary' $OUT/lab_group.log | tail -1)"
timeout 60 $B/bin/cuda_gemm_lab --addfuse > $OUT/lab_addfuse.log 2>&1
echo "gemm --addfuse rc=$? $(grep -E 'summary' $OUT/lab_addfuse.log | tail -1)"
timeout 60 $B/bin/cuda_gemm_lab --splitk > $OUT/lab_splitk.log 2>&1
echo "gemm --splitk rc=$? $(grep -E 'summary' $OUT/lab_splitk.log | tail -1)"
eng() {  # eng SIDE ARGS...: the engine of SIDE (old / new)
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
if [ -n "${VULKAN:-}" ] && left; then
  echo "=== Vulkan $(t)"
  for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
  $B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 150 $B/bin/vulkan_backend_test --gtest_brief=1 > $OUT/vk_unit.log 2>&1
  echo "vulkan_backend_test rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/vk_unit.log | tr '\n' ' ')"
  TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 150 $B/bin/op_conformance_test \
    --gtest_brief=1 > $OUT/vk_conf.log 2>&1
  echo "vulkan conformance rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/vk_conf.log | tr '\n' ' ')"
  TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=vulkan \
    TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 150 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
  echo "vulkan golden rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/vk_golden.log | tr '\n' ' ')"
  LABARGS="--reps 50 --keys 16,144,512 --max-keys 1024 --batch 128 --copies 8"
  for side in old new old new; do d=$B; [ $side = old ] && d=$O
    CK="--check /tmp/attn_old.bin"; [ ! -f /tmp/attn_old.bin ] && CK="--dump /tmp/attn_old.bin"
    TESSERA_VULKAN_PLUGIN=$d/lib/tessera/backends/libtessera_backend_vulkan.so timeout 60 \
      $B/bin/vulkan_attn_lab $LABARGS $CK > $OUT/vk_attn_$side.log 2>&1
    echo "vulkan_attn_lab $side rc=$?"; grep -E "us/call|same bits|differ" $OUT/vk_attn_$side.log | sed "s/^/    $side /"
  done
  TESSERA_VULKAN_ATTN_SPLIT_GROUPS=100000 TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 60 \
    $B/bin/vulkan_attn_lab $LABARGS --check /tmp/attn_old.bin > $OUT/vk_attn_forced.log 2>&1
  echo "vulkan_attn_lab split forced rc=$?"; grep -E "same bits|differ" $OUT/vk_attn_forced.log | sed 's/^/    forced /'
  for s in llama-3.2-1b llama-3.1-8b; do for side in old new; do
    eng $side --backend vulkan run /tmp/$s "t1 t2 t3 t4" --raw -n 16 --temperature 0 2> /dev/null > /tmp/v_${s}_$side.txt
    echo "  $s $side vulkan md5 $(md5sum < /tmp/v_${s}_$side.txt | cut -c1-12)"; done; done
  for side in old new cuda new old cuda; do
    case $side in
      cuda) left && eng new bench --backend cuda /tmp/llama-3.1-8b -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg" | sed "s/^/  cuda /" ;;
      *) left && eng $side bench --backend vulkan /tmp/llama-3.1-8b -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | sed "s/^/  $side vulkan /" ;;
    esac
  done
fi
echo "total $(t)"
