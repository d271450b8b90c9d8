#!/bin/bash
# vulkan-s6 GPU call 2: suites on NVIDIA with the final defaults (split GEMV policy 2, partial
# submissions, RoPE + KV_WRITE fusion) and with the split GEMV forced on/off; engine bench
# before/after/CUDA on the three shapes; GEMV knob variants on 8B; profiles. Logs in one tar.
# "before" = the same binary with TESSERA_VULKAN_DECODE_SPLIT=0 TESSERA_VULKAN_SUBMIT_EVERY=0
# TESSERA_VULKAN_FUSE_ROPE_KV=0 (the previous code paths).
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
(python3 bench/make_checkpoint.py --shape llama-3.2-1b --out /tmp/l1b 2>&1 | tail -1) &
(python3 bench/make_checkpoint.py --shape llama-3.1-8b --out /tmp/l8b 2>&1 | tail -1) &
P=$B/lib/tessera/backends
echo "=== vulkan_backend_test"
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 120 $B/bin/vulkan_backend_test > $L/unit.log 2>&1; echo rc=$?
grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) |Failure|Expected|Which|no Vulkan" $L/unit.log | head -30
for split in 2 1 0; do
  echo "=== conformance + golden, TESSERA_VULKAN_DECODE_SPLIT=$split"
  TESSERA_VULKAN_DECODE_SPLIT=$split TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $L/conf$split.log 2>&1; echo rc=$?
  grep -E "PASSED|FAILED|tolerance" $L/conf$split.log | head -8
  TESSERA_VULKAN_DECODE_SPLIT=$split TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
    timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $L/golden$split.log 2>&1; echo rc=$?
  grep -E "PASSED|FAILED|Failure" $L/golden$split.log | head -6
done
wait
bench() {  # label model backend env...
  local label=$1 m=$2 be=$3; shift 3
  echo "=== $m $be $label ($*)"
  env "$@" timeout ${BT:-100} $B/bin/engine bench --backend $be /tmp/$m -p 512 -n 128 -r 2 2>&1 | tee -a $L/bench_$m.log | grep -E "pp512|tg128|rror" | head -3
}
BEFORE="TESSERA_VULKAN_DECODE_SPLIT=0 TESSERA_VULKAN_SUBMIT_EVERY=0 TESSERA_VULKAN_FUSE_ROPE_KV=0"
for m in l8b q05 l1b; do
  bench before $m vulkan $BEFORE
  bench after $m vulkan X=1
  bench cuda $m cuda X=1
  bench split0 $m vulkan TESSERA_VULKAN_DECODE_SPLIT=0
  bench split1 $m vulkan TESSERA_VULKAN_DECODE_SPLIT=1
  bench no_ropekv $m vulkan TESSERA_VULKAN_FUSE_ROPE_KV=0
done
bench split1_b4 l8b vulkan TESSERA_VULKAN_DECODE_SPLIT=1 TESSERA_VULKAN_SPLIT_BLOCKS=4
bench split1_b2 l8b vulkan TESSERA_VULKAN_DECODE_SPLIT=1 TESSERA_VULKAN_SPLIT_BLOCKS=2
bench split2_b2 l8b vulkan TESSERA_VULKAN_SPLIT_BLOCKS=2
for m in l8b q05; do
  echo "=== profile $m tg64 (defaults)"
  TESSERA_VULKAN_PROFILE=1 timeout 60 $B/bin/engine bench --backend vulkan /tmp/$m -p 0 -n 64 -r 1 > $L/prof_$m.log 2>&1
  grep -A16 "backend profile" $L/prof_$m.log | head -16; grep tg64 $L/prof_$m.log
done
tar czf $OUT/logs.tgz -C /tmp logs
