#!/bin/bash
# vulkan-s6 GPU call 3 (lean): the final build's unit test and suites with the defaults and with
# the three lab knobs on (split GEMV for K <= 1024, 32 attention subgroups, 2 rows a subgroup for
# K >= 8192); tg128 of the defaults against each knob on q05 and l8b. Logs in one tar.
cd "$(dirname "$0")/../../../.."
R=$PWD
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
B=$R/.dev/bundle-vks6
export LD_LIBRARY_PATH=$B/lib
L=/tmp/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if ! $B/bin/engine devices 2>&1 | grep -q "vulkan:0"; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "using VK_DRIVER_FILES"
fi
(python3 bench/make_checkpoint.py --shape qwen2.5-0.5b --out /tmp/q05 2>&1 | tail -1) &
(python3 bench/make_checkpoint.py --shape llama-3.1-8b --out /tmp/l8b 2>&1 | tail -1) &
P=$B/lib/tessera/backends
KNOBS="TESSERA_VULKAN_DECODE_SPLIT=2 TESSERA_VULKAN_ATTN_SUBGROUPS=32 TESSERA_VULKAN_DECODE_ROWS_LONGK=2"
echo "=== vulkan_backend_test"
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 120 $B/bin/vulkan_backend_test > $L/unit.log 2>&1; echo rc=$?
grep -E "^\[ +(FAILED|SKIPPED|PASSED) |Failure|Expected|Which|no Vulkan" $L/unit.log | head -12
for cfg in default knobs; do
  E="X=1"; [ $cfg = knobs ] && E=$KNOBS
  echo "=== conformance + golden ($cfg)"
  env $E TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $L/conf_$cfg.log 2>&1; echo rc=$?
  grep -E "PASSED|FAILED|tolerance" $L/conf_$cfg.log | head -6
  env $E TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
    timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $L/golden_$cfg.log 2>&1; echo rc=$?
  grep -E "PASSED|FAILED|Failure" $L/golden_$cfg.log | head -6
done
wait
bench() {  # label model env...
  local label=$1 m=$2; shift 2
  echo "=== $m $label ($*)"
  env "$@" timeout 80 $B/bin/engine bench --backend vulkan /tmp/$m -p 0 -n 128 -r 2 2>&1 | tee -a $L/bench_$m.log | grep -E "tg128|rror" | head -3
}
bench default q05 X=1
bench split2 q05 TESSERA_VULKAN_DECODE_SPLIT=2
bench attn32 q05 TESSERA_VULKAN_ATTN_SUBGROUPS=32
bench attn8 q05 TESSERA_VULKAN_ATTN_SUBGROUPS=8
bench default l8b X=1
bench attn32 l8b TESSERA_VULKAN_ATTN_SUBGROUPS=32
bench longk2 l8b TESSERA_VULKAN_DECODE_ROWS_LONGK=2
tar czf $OUT/logs.tgz -C /tmp logs
