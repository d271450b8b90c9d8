#!/bin/bash
# Twenty-seventh session, call 6 (H200): the final tree's Vulkan plugin and vulkan_backend_test
# (RopeKvAttentionFusedMatchesSeparateNodes on one Vulkan instance) through the Vulkan suites.
#   run(command="bash backends/vulkan/lab/vk27f_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz", ".dev/vk27f"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
xz -dc .dev/vk27f/vk.so.xz > $VK; xz -dc .dev/vk27f/vbt.xz > /tmp/vbt; chmod +x /tmp/vbt
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
TESSERA_VULKAN_PLUGIN=$VK timeout 120 /tmp/vbt --gtest_brief=1 --gtest_filter='-*Coop*' > $OUT/vk_unit.log 2>&1
echo "unit rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]|FAILED  \]' $OUT/vk_unit.log | tr '\n' ' ')"
grep -E "Skipped" -A1 $OUT/vk_unit.log | head -6
TESSERA_CONFORMANCE_PLUGINS=$VK timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/vk_conf.log 2>&1
echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_conf.log | tr '\n' ' ')"
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$VK:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_golden.log | tr '\n' ' ')"
TESSERA_TEST_PLUGINS=$VK:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=vulkan TESSERA_DEFAULT_MODEL=$PWD/models/default \
  timeout 120 $B/bin/server_scheduler_test --gtest_brief=1 > $OUT/sched.log 2>&1
echo "scheduler rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/sched.log | tr '\n' ' ')"
