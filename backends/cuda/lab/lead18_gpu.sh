#!/bin/bash
# The lead's check of the eighteenth session's tree on the H100, one call: the fused RMS_NORM
# prologue of the M = 1 GEMV in one round trip (cu-dec18), the conflict-free 128 x 256 tile
# (cu-gemm18, configuration 30), whatever cu-attn18 kept, and the Vulkan lab-only read bound
# (vk-dec18), against HEAD 0a00b9a's plugins (.dev/old18.tar.xz: engine + cpu / cuda / vulkan).
# From the repo root, carrying .dev/bundle18.tar.xz (ci/bundle.sh of build/perf + test / lab
# binaries), .dev/old18.tar.xz and .gl:
#   1. CUDA op conformance / text golden / server_scheduler_test, cuda_argmax_graph_test,
#      cuda_backend_test; cuda_gemm_lab's bit checks (configurations 26 and 30 on the 8B / 1B
#      shapes, then the default dispatch), cuda_gemv_lab's same-bits checks, the kernel bench's
#      attention checks
#   2. Vulkan: vulkan_backend_test, op conformance and golden with --backend=vulkan
#   3. greedy md5 per side: CUDA 48 tokens (0.5B, 1B, 8B), 8B bf16 mode with a ~2k-token prompt,
#      Vulkan 16 tokens (1B, 8B)
#   4. interleaved prev / new: CUDA pp2048 exact and bf16 mode, tg128; Vulkan tg128 (8B, 1B)
# No step starts past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b llama-3.2-1b qwen2.5-0.5b
tar xf ${BUNDLE:-.dev/bundle18.tar.xz} -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/prev && cp -r $B /tmp/prev && mkdir -p /tmp/x && tar xJf ${OLD:-.dev/old18.tar.xz} -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so /tmp/x/libtessera_backend_vulkan.so /tmp/prev/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
echo "=== CUDA suites"; cuda_suites
for x in cuda_argmax_graph_test cuda_backend_test; do
  TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 90 $B/bin/$x --gtest_brief=1 > $OUT/$x.log 2>&1
  echo "$x rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/$x.log | tr '\n' ' ')"
done
find_cublaslt
TESSERA_LAB_TMA=26,30 TESSERA_LAB_SHAPES=8B.q_o,8B.gate_up,8B.down,1B.q_o,1B.gate_up,1B.down \
  TESSERA_LAB_TERMS=1 timeout 150 $B/bin/cuda_gemm_lab --wgmma-only --wg-from=7 > $OUT/gemm_lab.log 2>&1
echo "cuda_gemm_lab 26,30 rc=$? checks ok: $(grep -c ' ok$' $OUT/gemm_lab.log) FAILED: $(grep -c FAILED $OUT/gemm_lab.log)"
timeout 90 $B/bin/cuda_gemm_lab --wgmma-only --wg-from=99 --default-only > $OUT/gemm_default.log 2>&1
echo "cuda_gemm_lab default rc=$? checks ok: $(grep -c ' ok$' $OUT/gemm_default.log) FAILED: $(grep -c FAILED $OUT/gemm_default.log)"
grep -hE "FAILED|differ|mismatch" $OUT/gemm_lab.log $OUT/gemm_default.log | head -5
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 150 \
  $B/bin/cuda_gemv_lab --quick > $OUT/gemv_lab.log 2>&1
echo "cuda_gemv_lab rc=$? $(grep -E 'checks failures' $OUT/gemv_lab.log | tail -1) same-bits lines: $(grep -ci 'same bits' $OUT/gemv_lab.log)"
if [ -n "${ATTN_CMD:-}" ]; then eval "$ATTN_CMD" > $OUT/attn_lab.log 2>&1
  echo "attention checks rc=$? $(grep -ciE 'fail' $OUT/attn_lab.log) lines with fail"; grep -iE "fail|differ" $OUT/attn_lab.log | head -5; fi
t
echo "=== Vulkan"
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
t
ab() { local side=$1 d=$B; shift; [ $side = prev ] && d=/tmp/prev
  LD_LIBRARY_PATH=$d/lib timeout 150 $d/bin/engine "$@" 2>&1 | grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
LONG=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 250))")
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  i=0; while [ ! -f /tmp/$s.done ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
  for side in prev new; do d=$B; [ $side = prev ] && d=/tmp/prev
    LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side cuda md5 $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12)"
    if [ $s = llama-3.1-8b ]; then
      LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine --backend cuda --backend-opt cuda.matmul_precision=bf16 run /tmp/$s "$LONG" --raw -n 16 --temperature 0 2>/dev/null > /tmp/runb_$side.txt
      echo "  $s $side cuda bf16-long md5 $(md5sum < /tmp/runb_$side.txt | cut -c1-12) bytes $(wc -c < /tmp/runb_$side.txt)"
    fi
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
