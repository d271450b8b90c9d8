#!/bin/bash
# vk-dec3 GPU call 1: where a Llama-3.1-8B decode step goes (TESSERA_VULKAN_PROFILE=2: command
# buffer spans, GPU idle gaps, host recording and fence waits; =1: per-dispatch GPU time), the
# unit test on NVIDIA (software-pipelined decode GEMV bit checks), and engine bench tg128 for
# HEAD's plugin vs this build's default vs TESSERA_VULKAN_DECODE_PREFETCH variants.
# Bundle: bash ci/bundle.sh build/vulkan-s6 .dev/bundle-vk3 + stripped vulkan_backend_test,
# op_conformance_test, text_golden_test in bin/, HEAD's plugin in old/; carry .dev/bundle-vk3, .gl.
# NOTE: ran a build with TESSERA_VULKAN_DECODE_PREFETCH (the coalesced decode GEMV with the next
# step's loads issued before this step's chains; lost, not kept: see README "vk-dec3"). Logs: call1/.
cd "$(dirname "$0")/../../../.."
R=$PWD
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
B=$R/.dev/bundle-vk3
rm -rf /tmp/bold && cp -r $B /tmp/bold && cp $B/old/libtessera_backend_vulkan.so /tmp/bold/lib/tessera/backends/
export LD_LIBRARY_PATH=$B/lib
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
if ! $B/bin/engine devices 2>&1 | grep -q "vulkan:0"; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "using VK_DRIVER_FILES"
fi
(for s in "llama-3.1-8b l8b" "qwen2.5-0.5b q05" "llama-3.2-1b l1b"; do set -- $s; [ "${SHAPES:-all}" = all ] || [ $2 = l8b ] || continue; python3 bench/make_checkpoint.py --shape $1 --out /tmp/$2 2>&1 | tail -1; done) > $L/ckpt.log 2>&1 &
P=$B/lib/tessera/backends
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 120 $B/bin/vulkan_backend_test --gtest_brief=1 > $L/unit.log 2>&1; echo "unit rc=$?"
grep -E "^\[ +(FAILED|PASSED|SKIPPED) |Failure" $L/unit.log | head -12
wait; cat $L/ckpt.log
bench() {  # name bundle ckpt n reps [env...]
  local name=$1 b=$2 c=$3 n=$4 r=$5; shift 5
  env "$@" LD_LIBRARY_PATH=$b/lib timeout 90 $b/bin/engine bench /tmp/$c --backend vulkan -p 16 -n $n -r $r > $L/$name.log 2>&1
  echo "$name: $(grep -E "tg$n |rror" $L/$name.log | head -2 | tr -s ' ' | tr '\n' ' ')"
  grep -E "profile" $L/$name.log | sed 's/^.*profile/  profile/' | head -2
}
bench prof2_l8b_default $B l8b 64 1 TESSERA_VULKAN_PROFILE=2
bench prof2_l8b_pf1 $B l8b 64 1 TESSERA_VULKAN_PROFILE=2 TESSERA_VULKAN_DECODE_PREFETCH=1
bench prof1_l8b_default $B l8b 32 1 TESSERA_VULKAN_PROFILE=1
grep -A16 "backend profile:" $L/prof1_l8b_default.log | head -16
bench prof1_l8b_pf1 $B l8b 32 1 TESSERA_VULKAN_PROFILE=1 TESSERA_VULKAN_DECODE_PREFETCH=1
grep -E "matmul|sum of" $L/prof1_l8b_pf1.log | head -6
bench l8b_old /tmp/bold l8b 128 3
bench l8b_new $B l8b 128 3
bench l8b_pf1 $B l8b 128 3 TESSERA_VULKAN_DECODE_PREFETCH=1
bench l8b_pf2 $B l8b 128 3 TESSERA_VULKAN_DECODE_PREFETCH=2
bench l8b_pf1_rows2 $B l8b 128 3 TESSERA_VULKAN_DECODE_PREFETCH=1 TESSERA_VULKAN_DECODE_ROWS=2
if [ "${SHAPES:-all}" = all ]; then
  bench q05_old /tmp/bold q05 128 2
  bench q05_pf1 $B q05 128 2 TESSERA_VULKAN_DECODE_PREFETCH=1
fi
