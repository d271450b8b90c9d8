#!/bin/bash
# vk-gemv4 GPU call 3 (NVIDIA H100), the final tree: the skewed kernel on the norm-fused decode
# GEMVs is now the default. vulkan_backend_test (one Vulkan instance per variant test now), op
# conformance and golden with the defaults and with TESSERA_VULKAN_DECODE_SKEW=0, the lab
# (SKEW=0 vs the default, same bits), engine bench tg128 SKEW=0 / default (interleaved).
# Bundle: bash ci/bundle.sh build/vulkan-s6 .dev/bundle-vk4 + stripped vulkan_backend_test,
# op_conformance_test, text_golden_test, vulkan_gemv_lab in bin/; carry .dev/bundle-vk4, .gl.
# NOTE: as in call 2, the build that ran (logs: call3/) still had the split path in the
# coalesced kernel; rerun this script (ROUNDS=1 fits ~110 s) to check the final tree.
cd "$(dirname "$0")/../../../.."
R=$PWD
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
B=$R/.dev/bundle-vk4
export LD_LIBRARY_PATH=$B/lib
L=/tmp/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
if ! $B/bin/engine devices 2>&1 | grep -q "vulkan:0"; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "using VK_DRIVER_FILES"
fi
(for s in "llama-3.1-8b l8b" "qwen2.5-0.5b q05" "llama-3.2-1b l1b"; do set -- $s; [ "${SHAPES:-all}" = all ] || [ $2 = l8b ] || continue; python3 bench/make_checkpoint.py --shape $1 --out /tmp/$2 2>&1 | tail -1; done) > $L/ckpt.log 2>&1 &
P=$B/lib/tessera/backends
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
lab() {  # name [env...]
  local name=$1; shift
  env "$@" timeout 60 $B/bin/vulkan_gemv_lab --reps ${REPS:-100} ${LABARGS:-} > $L/lab_$name.log 2>&1
  echo "lab $name rc=$?"; cat $L/lab_$name.log
}
LABARGS="--dump /tmp/base.bin" lab base TESSERA_VULKAN_DECODE_SKEW=0
LABARGS="--check /tmp/base.bin" lab default
ON=""
echo "t=$SECONDS"
timeout 120 $B/bin/vulkan_backend_test --gtest_brief=1 > $L/unit.log 2>&1; echo "unit rc=$?"
grep -E "^\[ +(FAILED|PASSED|SKIPPED) |Failure" $L/unit.log | head -12
for k in default skew0; do
  [ $k = skew0 ] && ON=TESSERA_VULKAN_DECODE_SKEW=0 || ON=
  env $ON TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/conf_$k.log 2>&1; echo "conf $k rc=$?"
  grep -E "^\[ +(PASSED|FAILED|SKIPPED) " $L/conf_$k.log | head -4
  env $ON TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
    timeout 60 $B/bin/text_golden_test --gtest_brief=1 > $L/golden_$k.log 2>&1; echo "golden $k rc=$?"
  grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/golden_$k.log | head -4
done
echo "t=$SECONDS"
wait; cat $L/ckpt.log
bench() {  # name ckpt [env...]
  local name=$1 c=$2; shift 2
  env "$@" timeout 45 $B/bin/engine bench /tmp/$c --backend vulkan -p 16 -n 128 -r 3 > $L/$name.log 2>&1
  echo "$name: $(grep -E "tg128 |rror" $L/$name.log | head -2 | tr -s ' ' | tr '\n' ' ') t=$SECONDS"
}
for round in ${ROUNDS:-1 2}; do
  for c in ${BENCH:-l8b q05 l1b}; do
    [ $SECONDS -lt ${BUDGET:-225} ] || { echo "skip bench $c round $round (t=$SECONDS)"; continue; }
    bench ${c}_off$round $c TESSERA_VULKAN_DECODE_SKEW=0
    bench ${c}_on$round $c
  done
done
tar czf $OUT/logs.tgz -C /tmp logs
