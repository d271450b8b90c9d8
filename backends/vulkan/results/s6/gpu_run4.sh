#!/bin/bash
# vulkan-s6 GPU call 4: the final build (32 attention subgroups by default) on NVIDIA: unit test,
# conformance, golden, and Qwen tg128 as a sanity check.
cd "$(dirname "$0")/../../../.."
R=$PWD
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
B=$R/.dev/bundle-vks6
export LD_LIBRARY_PATH=$B/lib
L=/tmp/logs4; mkdir -p $L
if ! $B/bin/engine devices 2>&1 | grep -q "vulkan:0"; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "using VK_DRIVER_FILES"
fi
(python3 bench/make_checkpoint.py --shape qwen2.5-0.5b --out /tmp/q05 2>&1 | tail -1) &
P=$B/lib/tessera/backends
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 120 $B/bin/vulkan_backend_test > $L/unit.log 2>&1; echo unit rc=$?
grep -E "^\[ +(FAILED|SKIPPED|PASSED) |Failure|Expected|Which|no Vulkan" $L/unit.log | head -8
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $L/conf.log 2>&1; echo conf rc=$?
grep -E "PASSED|FAILED|tolerance" $L/conf.log | head -6
TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $L/golden.log 2>&1; echo golden rc=$?
grep -E "PASSED|FAILED|Failure" $L/golden.log | head -6
wait
timeout 60 $B/bin/engine bench --backend vulkan /tmp/q05 -p 0 -n 128 -r 2 2>&1 | tee $L/bench_q05.log | grep -E "tg128|rror"
tar czf $OUT/logs4.tgz -C /tmp logs4
