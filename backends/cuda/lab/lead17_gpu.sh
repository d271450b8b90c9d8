#!/bin/bash
# The lead's check of the seventeenth session's tree on the H100, one call: the one-piece GEMM
# tiles without ptxas's dummy wgmma (cu-gemm17, defaults), whatever cu-gemm17b kept, and the
# Vulkan norm-fused decode groups on persistent workgroups (vk-dec17), against HEAD c4c4067's
# plugins (.dev/old17.tar.xz: engine + cpu / cuda / vulkan). From the repo root, carrying
# .dev/bundle17.tar.xz (ci/bundle.sh of build/perf + test / lab binaries), .dev/old17.tar.xz and .gl:
#   1. CUDA op conformance / text golden / server_scheduler_test, cuda_argmax_graph_test,
#      cuda_backend_test, cuda_gemm_lab's bit checks (--wgmma-only --wg-from=7)
#   2. Vulkan: engine devices, pipeline stats of the skew+norm modules (vulkan_gemv_lab on 8B),
#      vulkan_backend_test, op conformance and golden with --backend=vulkan
#   3. greedy 48-token md5 per side on CUDA (0.5B, 1B, 8B) and 16 tokens on Vulkan (1B, 8B)
#   4. interleaved prev / new: CUDA pp2048 exact and bf16 mode, tg128; Vulkan tg128 (8B, 1B)
# No step starts past $DEADLINE s; logs in $OUT. (The 20:33 UTC call ran without
# TESSERA_VULKAN_PLUGIN on vulkan_backend_test, fixed here; results/lead17/console2.log is its rerun.)
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b llama-3.2-1b qwen2.5-0.5b
tar xf ${BUNDLE:-.dev/bundle17.tar.xz} -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/prev && cp -r $B /tmp/prev && mkdir -p /tmp/x && tar xJf ${OLD:-.dev/old17.tar.xz} -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so /tmp/x/libtessera_backend_vulkan.so /tmp/prev/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
echo "=== CUDA suites"; cuda_suites
for x in cuda_argmax_graph_test cuda_backend_test; do
  TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 90 $B/bin/$x --gtest_brief=1 > $OUT/$x.log 2>&1
  echo "$x rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/$x.log | tr '\n' ' ')"
done
find_cublaslt
timeout 200 $B/bin/cuda_gemm_lab --wgmma-only --wg-from=7 > $OUT/gemm_lab.log 2>&1
echo "cuda_gemm_lab rc=$? checks ok: $(grep -c ' ok$' $OUT/gemm_lab.log) $(grep -E 'summary failures' $OUT/gemm_lab.log | sort | uniq -c | tr '\n' ' ')"
grep -E "FAILED|differ|mismatch" $OUT/gemm_lab.log | head -5
t
echo "=== Vulkan"
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices -v 2>&1 | grep -iE "vulkan|units" | head -4
TESSERA_VULKAN_PIPELINE_STATS=1 TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 60 \
  $B/bin/vulkan_gemv_lab --reps 50 --glu --rope --shapes 8b > $OUT/vk_lab.log 2>&1
echo "vulkan_gemv_lab rc=$?"; grep -E "us/dispatch" $OUT/vk_lab.log | cut -c1-110 | head -8
grep "pipeline stats matmul.comp skew" $OUT/vk_lab.log | sort -u | sed -E 's/.*stats (matmul[^[]*).*(Register Count=[0-9]+), (Binary Size=[0-9]+).*(Shared Memory Size=[0-9]+).*/    \1 \2 \3 \4/' | head -6
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 150 $B/bin/vulkan_backend_test --gtest_brief=1 > $OUT/vk_unit.log 2>&1
echo "vulkan_backend_test rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/vk_unit.log | tr '\n' ' ')"
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 150 $B/bin/op_conformance_test \
  --gtest_brief=1 > $OUT/vk_conf.log 2>&1
echo "vulkan conformance rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/vk_conf.log | tr '\n' ' ')"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=vulkan \
  TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 150 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
echo "vulkan golden rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/vk_golden.log | tr '\n' ' ')"
t
ab() { local side=$1 d=$B; shift; [ $side = prev ] && d=/tmp/prev
  LD_LIBRARY_PATH=$d/lib timeout 150 $d/bin/engine "$@" 2>&1 | grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  i=0; while [ ! -f /tmp/$s.done ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
  for side in prev new; do d=$B; [ $side = prev ] && d=/tmp/prev
    LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side cuda md5 $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12)"
    [ $s = qwen2.5-0.5b ] && continue
    LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine --backend vulkan run /tmp/$s "t1 t2 t3 t4" --raw -n 16 --temperature 0 2>/dev/null > /tmp/vrun_${s}_$side.txt
    echo "  $s $side vulkan md5 $(md5sum < /tmp/vrun_${s}_$side.txt | cut -c1-12)"; done
  left || continue
  echo "=== $s  [t=$(( $(date +%s) - T0 )) s]"
  for r in 1 2; do for side in prev new; do
    [ $r = 2 ] && [ $s = qwen2.5-0.5b ] && continue
    ab $side bench --backend cuda /tmp/$s -p 2048 -n 0 -r 2
    ab $side --backend-opt cuda.matmul_precision=bf16 bench --backend cuda /tmp/$s -p 2048 -n 0 -r 2 | sed 's/pp2048/pp2048-bf16/'
    ab $side bench --backend cuda /tmp/$s -p 16 -n 128 -r 2
    [ $s = qwen2.5-0.5b ] || ab $side bench --backend vulkan /tmp/$s -p 16 -n 128 -r 2 | sed 's/tg128/tg128-vulkan/'
  done; done
done
echo "total $(( $(date +%s) - T0 )) s"
