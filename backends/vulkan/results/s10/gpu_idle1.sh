#!/bin/bash
# vk-idle GPU call 1 (NVIDIA H100): the decode step's idle. Suites with the new code (unit with the
# defaults; conformance + golden with every new knob on), then engine bench tg128: the step
# profile (TESSERA_VULKAN_PROFILE=2) with HEAD's behaviour (EAGER_DOWNLOAD=0) and with all knobs,
# HEAD's plugin (head/, through TESSERA_BACKEND_PATH) vs this plugin's default vs all knobs.
# Bundle: bash ci/bundle.sh build/vulkan-s6 .dev/bundle-vk-idle + stripped vulkan_backend_test,
# op_conformance_test, text_golden_test in bin/, HEAD's plugin in head/; carry it and .gl.
cd "$(dirname "$0")/../../../.."
R=$PWD; T0=$(date +%s); BUDGET=${BUDGET:-200}
left() { [ $(( $(date +%s) - T0 )) -lt $BUDGET ]; }
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
B=$R/.dev/bundle-vk-idle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
L=/tmp/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || { export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "VK_DRIVER_FILES"; }
(for s in "llama-3.1-8b l8b" "llama-3.2-1b l1b" "qwen2.5-0.5b q05"; do set -- $s; python3 bench/make_checkpoint.py --shape $1 --out /tmp/$2 2>&1 | tail -1; touch /tmp/$2.done; done) > $L/ckpt.log 2>&1 &
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
ALL="TESSERA_VULKAN_SPIN_WAIT=1 TESSERA_VULKAN_FIRST_SUBMIT=2 TESSERA_VULKAN_SUBMIT_EVERY=16 TESSERA_VULKAN_SUBMIT_RAMP=4"
timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 > $L/unit.log 2>&1; echo "unit rc=$? t=$(( $(date +%s) - T0 ))"
grep -E "^\[ +(FAILED|PASSED|SKIPPED) |Failure" $L/unit.log | head -8
env $ALL TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 40 $B/bin/op_conformance_test --gtest_brief=1 > $L/conf.log 2>&1; echo "conf rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) " $L/conf.log | head -4
env $ALL TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 40 $B/bin/text_golden_test --gtest_brief=1 > $L/golden.log 2>&1; echo "golden rc=$? t=$(( $(date +%s) - T0 ))"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/golden.log | head -4
bench() {  # name ckpt reps [env...]
  local name=$1 c=$2 r=$3; shift 3
  while [ ! -f /tmp/$c.done ]; do sleep 1; done
  left || { echo "skip $name"; return; }
  env "$@" timeout 60 $B/bin/engine bench /tmp/$c --backend vulkan -p 16 -n 128 -r $r > $L/$name.log 2>&1
  echo "$name: $(grep -E "tg128 |rror" $L/$name.log | head -2 | tr -s ' ' | tr '\n' ' ') t=$(( $(date +%s) - T0 ))"
  grep "step profile" $L/$name.log | sed 's/.*step profile/  profile/'
}
bench l8b_prof_off l8b 1 TESSERA_VULKAN_PROFILE=2 TESSERA_VULKAN_EAGER_DOWNLOAD=0
bench l8b_prof_all l8b 1 TESSERA_VULKAN_PROFILE=2 $ALL
bench l8b_head l8b 3 TESSERA_BACKEND_PATH=$B/head
bench l8b_def l8b 3
bench l8b_all l8b 3 $ALL
for c in l1b q05; do
  bench ${c}_head $c 3 TESSERA_BACKEND_PATH=$B/head
  bench ${c}_def $c 3
  bench ${c}_all $c 3 $ALL
done
bench l1b_spin l1b 3 TESSERA_VULKAN_SPIN_WAIT=1
bench l1b_ramp l1b 3 TESSERA_VULKAN_FIRST_SUBMIT=2 TESSERA_VULKAN_SUBMIT_EVERY=16 TESSERA_VULKAN_SUBMIT_RAMP=4
bench l1b_prof_off l1b 1 TESSERA_VULKAN_PROFILE=2 TESSERA_VULKAN_EAGER_DOWNLOAD=0
bench l1b_prof_all l1b 1 TESSERA_VULKAN_PROFILE=2 $ALL
cat $L/ckpt.log
tar czf $OUT/logs.tgz -C /tmp logs
echo "total $(( $(date +%s) - T0 )) s"
