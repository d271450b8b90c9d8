#!/bin/bash
# vulkan-dec GPU call: suites on NVIDIA + tg128 before/after on the three shapes.
cd "$(dirname "$0")/../.."
R=$PWD
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
B=$R/.dev/bundle-vkdec
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if ! $B/bin/engine devices 2>&1 | grep -q "vulkan:0"; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "using VK_DRIVER_FILES"
fi
$B/bin/engine devices -v 2>&1 | grep -A2 "^vulkan" | head -3
(python3 bench/make_checkpoint.py --shape qwen2.5-0.5b --out /tmp/q05 2>&1 | tail -1) &
(python3 bench/make_checkpoint.py --shape llama-3.2-1b --out /tmp/l1b 2>&1 | tail -1) &
(python3 bench/make_checkpoint.py --shape llama-3.1-8b --out /tmp/l8b 2>&1 | tail -1) &
P=$B/lib/tessera/backends; L="env LD_LIBRARY_PATH=$B/lib"
echo "=== vulkan_backend_test"
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so $L timeout 120 $B/bin/vulkan_backend_test > $OUT/unit.log 2>&1; echo rc=$?
grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) |Failure|Expected|Which" $OUT/unit.log | head -24
echo "=== conformance"
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so $L timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/conf.log 2>&1; echo rc=$?
grep -E "PASSED|FAILED|tolerance" $OUT/conf.log | head -20
echo "=== golden"
TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  $L timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/golden.log 2>&1; echo rc=$?
grep -E "PASSED|FAILED|Failure" $OUT/golden.log | head -10
wait
OLD=$R/.dev/bundle-vk  # last session's final bundle (14:13): the "before"
bench() {  # label model env...
  local label=$1 m=$2; shift 2
  local E=$B; [ "$label" = before ] && E=$OLD
  echo "=== $m $label ($*) [$E]"
  env "$@" timeout ${BT:-80} $E/bin/engine bench --backend vulkan /tmp/$m -p 16 -n 128 -r 3 2>&1 | tee -a $OUT/bench_$m.log | grep -E "tg128|pp16|rror" | head -3
}
BEFORE="TESSERA_VULKAN_DECODE_COALESCE=0 TESSERA_VULKAN_DECODE_ROWS=4 TESSERA_VULKAN_FUSE_RESIDUAL=0 TESSERA_VULKAN_FUSE_PAIRS=0 TESSERA_VULKAN_FUSE_NORM=0"
for m in q05 l1b l8b; do
  bench before $m X=1
  bench after $m X=1
  bench after_nonorm $m TESSERA_VULKAN_FUSE_NORM=0
done
bench after_nocoal l8b TESSERA_VULKAN_DECODE_COALESCE=0
echo "=== profile q05 tg64 after"
TESSERA_VULKAN_PROFILE=1 timeout 40 $B/bin/engine bench --backend vulkan /tmp/q05 -p 0 -n 64 -r 1 > $OUT/prof_q05.log 2>&1
grep -A14 "backend profile" $OUT/prof_q05.log | head -16
echo "=== profile l8b tg32 after"
TESSERA_VULKAN_PROFILE=1 timeout 60 $B/bin/engine bench --backend vulkan /tmp/l8b -p 0 -n 32 -r 1 > $OUT/prof_l8b.log 2>&1
grep -A14 "backend profile" $OUT/prof_l8b.log | head -16
