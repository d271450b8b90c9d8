#!/bin/bash
# The lead's first call of the twenty-third session: the first session on an H200 (every earlier
# number is an H100 80GB HBM3's). HEAD db77bab's bundle as is, one call, from the repo root carrying
# .dev/bundle23.tar.xz (ci/bundle.sh of build/perf + the CUDA test binaries and cuda_gemv_lab),
# .dev/lab23_bench.tar.xz (bin/bench_cuda_kernels) and .gl (Debian's GL/EGL debs: Vulkan):
#   1. CUDA op conformance / text golden / server_scheduler_test / argmax graph replay; lab bits
#      (cuda_gemv_lab --quick, bench_cuda_kernels --attention-tc 1024 checks)
#   2. bench/cuda_compare.py --skip-compile --reps 2 --parallel 64 --greedy --keep: the card's
#      roofline (copy, bf16 matmul), transformers eager prefill / decode, engine pp2048 / tg128 /
#      tg128x64-greedy on the three benchmark shapes
#   3. Vulkan: conformance, golden, 8B tg128 / pp512 beside CUDA's
# No step starts past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-480}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
tar xJf ${BUNDLE:-.dev/bundle23.tar.xz} -C .dev && tar xJf ${BENCH:-.dev/lab23_bench.tar.xz} -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
nvidia-smi -q | grep -iE "product name|bus type|link width|max clocks" -A0 | head
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_properties(0))"
echo "=== CUDA suites $(t)"
cuda_suites
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 > $OUT/argmax.log 2>&1
echo "cuda_argmax_graph_test rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/argmax.log | tr '\n' ' ')"
echo "=== lab bits $(t)"
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 60 $B/bin/cuda_gemv_lab --quick > $OUT/lab_gemv.log 2>&1
echo "gemv --quick rc=$? $(grep -cE 'same bits' $OUT/lab_gemv.log) same-bits lines; $(grep -c DIFFERENT $OUT/lab_gemv.log) DIFFERENT; $(grep -E 'failures' $OUT/lab_gemv.log | tail -1)"
timeout 90 $B/bin/bench_cuda_kernels --attention-tc 1024 checks > $OUT/lab_attn.log 2>&1
echo "attention-tc checks rc=$? $(grep -E 'summary' $OUT/lab_attn.log | tail -1)"
echo "=== cuda_compare $(t)"
timeout $(( DEADLINE - $(date +%s) + T0 + 60 )) python3 bench/cuda_compare.py --engine $B/bin/engine --out $OUT \
  --skip-compile --reps 2 --parallel 64 --greedy --keep --tmp /tmp/cc > $OUT/cuda_compare.log 2> $OUT/cuda_compare.err
echo "cuda_compare rc=$?"; grep -vE "^\[" $OUT/cuda_compare.err | tail -5; grep -E "^\[" $OUT/cuda_compare.err | tail -30
if left && ls /tmp/cc/llama-3.1-8b > /dev/null 2>&1; then
  echo "=== Vulkan $(t)"
  for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
  $B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  $B/bin/engine devices -v 2>&1 | head -12
  TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 150 $B/bin/op_conformance_test \
    --gtest_brief=1 > $OUT/vk_conf.log 2>&1
  echo "vulkan conformance rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/vk_conf.log | tr '\n' ' ')"
  TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=vulkan \
    TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 150 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
  echo "vulkan golden rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/vk_golden.log | tr '\n' ' ')"
  for be in vulkan cuda vulkan cuda; do
    left && timeout 150 $B/bin/engine bench --backend $be /tmp/cc/llama-3.1-8b -p 512 -n 128 -r 2 2>&1 |
      grep -E "\| (pp|tg)|rror" | sed "s/^/  8B $be /"
  done
fi
echo "total $(t)"
