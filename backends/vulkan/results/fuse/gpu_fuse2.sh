#!/bin/bash
# vk-fuse verification (NOT run by vk-fuse: its one call went to gpu_fuse.sh, see README): the
# final tree, where the SWIGLU / q RoPE epilogues live in their own modules (decode_skew_pair_*)
# and are opt-in (TESSERA_VULKAN_FUSE_SWIGLU=1 TESSERA_VULKAN_FUSE_ROPE_Q=1). Checks the bits of
# the paired modules on NVIDIA (unit test + golden with the knobs on), then tg128 of HEAD's plugin
# (head/ = the tree before vk-fuse), this plugin's default (should equal head: the same modules)
# and the knobs on, interleaved. Flip the defaults (plugin.cc fuse_swiglu / fuse_rope_q) only if
# "on" beats "head". Bundle as gpu_fuse.sh's (.dev/bundle-vk-fuse, head/ inside); carry it and .gl.
cd "$(dirname "$0")/../../../.."
R=$PWD; T0=$(date +%s); BUDGET=${BUDGET:-110}
left() { [ $(( $(date +%s) - T0 )) -lt $BUDGET ]; }
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
B=$R/.dev/bundle-vk-fuse; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
L=/tmp/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || { export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "VK_DRIVER_FILES"; }
(for s in "llama-3.1-8b l8b" "llama-3.2-1b l1b" "qwen2.5-0.5b q05"; do set -- $s; python3 bench/make_checkpoint.py --shape $1 --out /tmp/$2 2>&1 | tail -1; touch /tmp/$2.done; done) > $L/ckpt.log 2>&1 &
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
timeout 40 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter=*Epilogue*:*NormFused*:*RopeKv*:*Grouped*:*DecodeGemv*:*Residual* > $L/unit.log 2>&1; echo "unit rc=$? t=$(( $(date +%s) - T0 ))"
grep -E "^\[ +(FAILED|PASSED|SKIPPED) |Failure|byte " $L/unit.log | head -8
ON="TESSERA_VULKAN_FUSE_SWIGLU=1 TESSERA_VULKAN_FUSE_ROPE_Q=1"
env $ON TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 30 $B/bin/text_golden_test --gtest_brief=1 > $L/golden_on.log 2>&1; echo "golden (knobs on) rc=$? t=$(( $(date +%s) - T0 ))"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/golden_on.log | head -4
bench() {  # name ckpt reps [env...]
  local name=$1 c=$2 r=$3; shift 3
  while [ ! -f /tmp/$c.done ]; do sleep 1; done
  left || { echo "skip $name"; return; }
  env "$@" timeout 45 $B/bin/engine bench /tmp/$c --backend vulkan -p 16 -n 128 -r $r > $L/$name.log 2>&1
  echo "$name: $(grep -E "tg128[- ]|rror" $L/$name.log | head -2 | tr -s ' ' | tr '\n' ' ') t=$(( $(date +%s) - T0 ))"
}
bench l8b_head1 l8b 3 TESSERA_BACKEND_PATH=$B/head
bench l8b_def1 l8b 3
bench l8b_on1 l8b 3 $ON
bench l8b_head2 l8b 3 TESSERA_BACKEND_PATH=$B/head
bench l8b_on2 l8b 3 $ON
bench l1b_def l1b 3
bench l1b_on l1b 3 $ON
bench q05_def q05 3
bench q05_on q05 3 $ON
tar czf $OUT/logs.tgz -C /tmp logs
echo "total $(( $(date +%s) - T0 )) s"
