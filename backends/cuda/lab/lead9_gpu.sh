#!/bin/bash
# The lead's GPU call of the ninth session, from the repo root, carrying .dev/bundle.tar.gz (the
# tree's bundle + test binaries), .dev/labs9.tar.xz (cuda_gemv_lab, vulkan_gemv_lab),
# .dev/old9.tar.xz (the eighth session's engine and CUDA / Vulkan / CPU plugins) and .gl (glvnd
# debs for Vulkan). CUDA suites (ARGMAX conformance, greedy on the device, graph capture), the
# GEMV lab's bit checks, the Vulkan lab's bit check and suites, then engine new vs old: CUDA tg128,
# x64 (+ --greedy), 8B pp2048, Vulkan tg128. Steps stop starting past $DEADLINE s. Knobs: XN
# (tokens of the x64 test, 64), PP=0 (no pp2048), VK=0 (no Vulkan part).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-480}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
tar xzf .dev/bundle.tar.gz -C .dev && tar xJf .dev/labs9.tar.xz -C .dev/bundle/bin
B=.dev/bundle; export LD_LIBRARY_PATH=$PWD/$B/lib; P=$PWD/$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
(for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
. backends/cuda/lab/lab_common.sh
echo "=== CUDA suites"; cuda_suites; cp $OUT/tests.log $OUT/cuda_tests.log
grep -c "ARGMAX" $OUT/cuda_tests.log
echo "=== greedy + argmax graph"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda \
  TESSERA_DEFAULT_MODEL=$PWD/models/default TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models \
  timeout 90 $B/bin/server_greedy_test --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED)|Failure|SKIPPED" | head -8
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED)|Failure|SKIPPED" | head -4
echo "=== HTTP BatchingTest + greedy API"; TESSERA_BACKEND=cuda timeout 150 python3 tests/server/server_test.py --engine $B/bin/engine BatchingTest ApiTest.test_greedy_on_device_matches_logits 2>&1 | tail -3
echo "=== gemv lab --quick"; timeout 120 $B/bin/cuda_gemv_lab --quick > $OUT/gemv.log 2>&1; echo rc=$?; grep -E "failures=" $OUT/gemv.log; grep -c "same bits" $OUT/gemv.log
echo "checks $(( $(date +%s) - T0 )) s"
rm -rf /tmp/oldb && cp -r $B /tmp/oldb && tar xJf .dev/old9.tar.xz -C /tmp/oldb/lib/tessera/backends/ && mv /tmp/oldb/lib/tessera/backends/engine /tmp/oldb/bin/engine
eb() { local d=$PWD/$B; [ $1 = old ] && d=/tmp/oldb; shift
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench "$@" 2>&1 | grep -E "\| (pp|tg)[0-9]|rror" | sed 's/^/    /'; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  for r in 1 2; do for v in new old; do echo "=== $s tg128 $v r$r"; eb $v --backend cuda /tmp/$s -p 16 -n 128 -r 3; done; done
  for v in new old; do echo "=== $s x64 $v"; eb $v --backend cuda /tmp/$s -p 0 -n ${XN:-64} -r 2 --parallel 64; done
  echo "=== $s x64 new --greedy"; eb new --backend cuda /tmp/$s -p 0 -n ${XN:-64} -r 2 --parallel 64 --greedy
  echo "  t=$(( $(date +%s) - T0 )) s"
done
[ "${PP:-1}" = 1 ] && left && for v in new old; do echo "=== 8B pp2048 $v"; eb $v --backend cuda /tmp/llama-3.1-8b -p 2048 -n 0 -r 2; done
[ "${VK:-1}" = 1 ] || { echo "total $(( $(date +%s) - T0 )) s"; exit 0; }
echo "=== Vulkan"
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
left && { TESSERA_VULKAN_DECODE_SKEW=0 timeout 60 $B/bin/vulkan_gemv_lab --reps 50 --dump /tmp/vbase.bin > $OUT/vlab0.log 2>&1; echo "vlab off rc=$?"
  timeout 60 $B/bin/vulkan_gemv_lab --reps 50 --check /tmp/vbase.bin > $OUT/vlab1.log 2>&1; echo "vlab default rc=$?"; tail -14 $OUT/vlab1.log; }
left && { timeout 120 $B/bin/vulkan_backend_test --gtest_brief=1 2>&1 | grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" | head -6; }
left && { TESSERA_BUNDLE=$B BENCH_TIMEOUT=60 PP=64 TG=16 OUT=$OUT/vk bash backends/vulkan/gpu_check.sh 2>&1 | grep -vE "^\[ +OK|RUN" | tail -14; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  left || break
  for v in new old; do echo "=== $s vulkan tg128 $v"; eb $v --backend vulkan /tmp/$s -p 16 -n 128 -r 2; done
done
echo "total $(( $(date +%s) - T0 )) s"
