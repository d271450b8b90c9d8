#!/bin/bash
# vk-dec3 GPU call 2: the staged decode GEMV + SWIGLU epilogue (TESSERA_VULKAN_DECODE_STAGED=1)
# on NVIDIA: vulkan_backend_test (bit checks of the staged modules and the fused SWIGLU), op
# conformance and text golden with it on (run while the checkpoints are made), then engine bench
# -p 16 -n 128 -r 3 tg128: HEAD's plugin vs this build with STAGED=1 (8B with the step profile,
# TESSERA_VULKAN_PROFILE=2) on the Llama-3.1-8B, Qwen2.5-0.5B and Llama-3.2-1B shapes.
# Bundle as gpu_run1.sh (.dev/bundle-vk3, HEAD's plugin in old/); carry .dev/bundle-vk3, .gl.
# NOTE: ran the build of staged_glu_attempt.diff (TESSERA_VULKAN_DECODE_STAGED, the staged decode
# GEMV with the SWIGLU epilogue; lost, not kept: see README "vk-dec3"). Logs: call2/.
cd "$(dirname "$0")/../../../.."
R=$PWD
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
B=$R/.dev/bundle-vk3
rm -rf /tmp/bold && cp -r $B /tmp/bold && cp $B/old/libtessera_backend_vulkan.so /tmp/bold/lib/tessera/backends/
export LD_LIBRARY_PATH=$B/lib
L=/tmp/logs2; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if ! $B/bin/engine devices 2>&1 | grep -q "vulkan:0"; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "using VK_DRIVER_FILES"
fi
for s in "llama-3.1-8b l8b" "qwen2.5-0.5b q05" "llama-3.2-1b l1b"; do
  set -- $s; (python3 bench/make_checkpoint.py --shape $1 --out /tmp/$2 > $L/ckpt_$2.log 2>&1) &
done
P=$B/lib/tessera/backends
export TESSERA_VULKAN_DECODE_STAGED=1
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 90 $B/bin/vulkan_backend_test --gtest_brief=1 > $L/unit.log 2>&1; echo "unit rc=$?"
grep -E "^\[ +(FAILED|PASSED|SKIPPED) |Failure" $L/unit.log | head -8
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/conf.log 2>&1; echo "conf rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) " $L/conf.log | head -4
TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 60 $B/bin/text_golden_test --gtest_brief=1 > $L/golden.log 2>&1; echo "golden rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/golden.log | head -4
unset TESSERA_VULKAN_DECODE_STAGED
wait; tail -qn1 $L/ckpt_*.log
bench() {  # name bundle ckpt [env...]
  local name=$1 b=$2 c=$3; shift 3
  env "$@" LD_LIBRARY_PATH=$b/lib timeout 60 $b/bin/engine bench /tmp/$c --backend vulkan -p 16 -n 128 -r 3 > $L/$name.log 2>&1
  echo "$name: $(grep -E "tg128 |rror" $L/$name.log | head -2 | tr -s ' ' | tr '\n' ' ')"
  grep -E "step profile" $L/$name.log | sed 's/^.*step profile/  step profile/' | head -1
}
bench l8b_old /tmp/bold l8b
bench l8b_st1 $B l8b TESSERA_VULKAN_DECODE_STAGED=1 TESSERA_VULKAN_PROFILE=2
TESSERA_VULKAN_DECODE_STAGED=1 TESSERA_VULKAN_PROFILE=1 timeout 40 $B/bin/engine bench /tmp/l8b --backend vulkan -p 16 -n 16 -r 1 > $L/prof1_l8b_st1.log 2>&1
grep -E "matmul|elementwise|sum of" $L/prof1_l8b_st1.log | head -6
for c in q05 l1b; do
  bench ${c}_old /tmp/bold $c
  bench ${c}_st1 $B $c TESSERA_VULKAN_DECODE_STAGED=1
done
tar czf $OUT/logs2.tgz -C /tmp logs2
