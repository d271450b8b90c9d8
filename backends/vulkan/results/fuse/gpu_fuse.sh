#!/bin/bash
# vk-fuse GPU call (NVIDIA H100): the SWIGLU and the q ROPE in the norm-fused decode GEMVs'
# epilogue. Suites with the defaults (unit without the coop tests, conformance, golden), then
# engine bench tg128 with both knobs off vs on, interleaved (8B twice), PROFILE=2 on 8B, the
# ninth-session-plus-vk-idle plugin (head/, = this tree before vk-fuse) on 8B, then 1B / 0.5B.
# Ran once (call 1, 04:07 UTC) on the first form of the tree: the epilogues compiled into the
# skew+norm / coalesced+norm modules themselves, knobs on by default (the final tree moved them
# to decode_skew_pair_* modules, opt-in: gpu_fuse2.sh checks that form). Logs: call1/.
# Bundle: bash ci/bundle.sh build/vk-fuse .dev/bundle-vk-fuse + stripped vulkan_backend_test,
# op_conformance_test, text_golden_test in bin/, vk-idle's plugin in head/; carry it and .gl.
cd "$(dirname "$0")/../../../.."
R=$PWD; T0=$(date +%s); BUDGET=${BUDGET:-150}
left() { [ $(( $(date +%s) - T0 )) -lt $BUDGET ]; }
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
B=$R/.dev/bundle-vk-fuse; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
L=/tmp/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || { export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "VK_DRIVER_FILES"; }
(for s in "llama-3.1-8b l8b" "llama-3.2-1b l1b" "qwen2.5-0.5b q05"; do set -- $s; python3 bench/make_checkpoint.py --shape $1 --out /tmp/$2 2>&1 | tail -1; touch /tmp/$2.done; done) > $L/ckpt.log 2>&1 &
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
timeout 40 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter=-*Coop* > $L/unit.log 2>&1; echo "unit rc=$? t=$(( $(date +%s) - T0 ))"
grep -E "^\[ +(FAILED|PASSED|SKIPPED) |Failure|byte " $L/unit.log | head -8
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 30 $B/bin/op_conformance_test --gtest_brief=1 > $L/conf.log 2>&1; echo "conf rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) " $L/conf.log | head -4
TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 30 $B/bin/text_golden_test --gtest_brief=1 > $L/golden.log 2>&1; echo "golden rc=$? t=$(( $(date +%s) - T0 ))"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/golden.log | head -4
bench() {  # name ckpt reps [env...]
  local name=$1 c=$2 r=$3; shift 3
  while [ ! -f /tmp/$c.done ]; do sleep 1; done
  left || { echo "skip $name"; return; }
  env "$@" timeout 45 $B/bin/engine bench /tmp/$c --backend vulkan -p 16 -n 128 -r $r > $L/$name.log 2>&1
  echo "$name: $(grep -E "tg128[- ]|rror" $L/$name.log | head -2 | tr -s ' ' | tr '\n' ' ') t=$(( $(date +%s) - T0 ))"
  grep "step profile\|step medians" $L/$name.log | sed 's/.*step \(profile\|medians\)/  \1/'
}
OFF="TESSERA_VULKAN_FUSE_SWIGLU=0 TESSERA_VULKAN_FUSE_ROPE_Q=0"
bench l8b_off1 l8b 3 $OFF
bench l8b_on1 l8b 3
bench l8b_off2 l8b 3 $OFF
bench l8b_on2 l8b 3
bench l8b_prof l8b 1 TESSERA_VULKAN_PROFILE=2
bench l1b_off l1b 3 $OFF
bench l1b_on l1b 3
bench q05_off q05 3 $OFF
bench q05_on q05 3
bench l8b_head l8b 3 TESSERA_BACKEND_PATH=$B/head
bench l1b_glu l1b 3 TESSERA_VULKAN_FUSE_ROPE_Q=0
bench l1b_rope l1b 3 TESSERA_VULKAN_FUSE_SWIGLU=0
cat $L/ckpt.log
tar czf $OUT/logs.tgz -C /tmp logs
echo "total $(( $(date +%s) - T0 )) s"
