#!/bin/bash
# vulkan-s6 GPU call 1: suites on NVIDIA (split GEMV + partial submissions on, and the split off),
# then engine bench before/after/CUDA on the three shapes, knob variants and profiles.
# "before" = the same binary with TESSERA_VULKAN_DECODE_SPLIT=0 TESSERA_VULKAN_SUBMIT_EVERY=0
# (exactly the previous code paths: coalesced decode GEMV, one submission an execute).
cd "$(dirname "$0")/../../../.."
R=$PWD
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
B=$R/.dev/bundle-vks6
export LD_LIBRARY_PATH=$B/lib
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
if ! $B/bin/engine devices 2>&1 | grep -q "vulkan:0"; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "using VK_DRIVER_FILES"
fi
TESSERA_VULKAN_PROBE=1 $B/bin/engine devices -v 2>&1 | grep -E "probe|^vulkan|vulkan:0|cuda:0" | head -6
(python3 bench/make_checkpoint.py --shape qwen2.5-0.5b --out /tmp/q05 2>&1 | tail -1) &
(python3 bench/make_checkpoint.py --shape llama-3.2-1b --out /tmp/l1b 2>&1 | tail -1) &
(python3 bench/make_checkpoint.py --shape llama-3.1-8b --out /tmp/l8b 2>&1 | tail -1) &
P=$B/lib/tessera/backends
echo "=== vulkan_backend_test"
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 120 $B/bin/vulkan_backend_test > $OUT/unit.log 2>&1; echo rc=$?
grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) |Failure|Expected|Which" $OUT/unit.log | head -24
for split in 1 0; do
  echo "=== conformance split=$split"
  TESSERA_VULKAN_DECODE_SPLIT=$split TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/conf$split.log 2>&1; echo rc=$?
  grep -E "PASSED|FAILED|tolerance" $OUT/conf$split.log | head -8
  echo "=== golden split=$split"
  TESSERA_VULKAN_DECODE_SPLIT=$split TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
    timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/golden$split.log 2>&1; echo rc=$?
  grep -E "PASSED|FAILED|Failure" $OUT/golden$split.log | head -6
done
wait
bench() {  # label model backend env...
  local label=$1 m=$2 be=$3; shift 3
  echo "=== $m $be $label ($*)"
  env "$@" timeout ${BT:-100} $B/bin/engine bench --backend $be /tmp/$m -p 512 -n 128 -r 2 2>&1 | tee -a $OUT/bench_$m.log | grep -E "pp512|tg128|rror" | head -3
}
BEFORE="TESSERA_VULKAN_DECODE_SPLIT=0 TESSERA_VULKAN_SUBMIT_EVERY=0"
for m in l8b q05 l1b; do
  bench before $m vulkan $BEFORE
  bench after $m vulkan X=1
  bench cuda $m cuda X=1
done
for m in l8b q05; do
  bench split_only $m vulkan TESSERA_VULKAN_SUBMIT_EVERY=0
  bench submit_only $m vulkan TESSERA_VULKAN_DECODE_SPLIT=0
done
bench split_rows2 l8b vulkan TESSERA_VULKAN_DECODE_ROWS=2
bench every16 q05 vulkan TESSERA_VULKAN_SUBMIT_EVERY=16
bench every64 q05 vulkan TESSERA_VULKAN_SUBMIT_EVERY=64
for s in 1 0; do
  echo "=== profile l8b tg32 split=$s"
  TESSERA_VULKAN_DECODE_SPLIT=$s TESSERA_VULKAN_PROFILE=1 timeout 60 $B/bin/engine bench --backend vulkan /tmp/l8b -p 0 -n 32 -r 1 > $OUT/prof_l8b_$s.log 2>&1
  grep -A14 "backend profile" $OUT/prof_l8b_$s.log | head -16; grep tg32 $OUT/prof_l8b_$s.log
done
echo "=== profile q05 tg64 split=1"
TESSERA_VULKAN_PROFILE=1 timeout 40 $B/bin/engine bench --backend vulkan /tmp/q05 -p 0 -n 64 -r 1 > $OUT/prof_q05.log 2>&1
grep -A14 "backend profile" $OUT/prof_q05.log | head -16
