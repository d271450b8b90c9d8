#!/bin/bash
# vk-idle GPU call 2 (NVIDIA H100), the final tree: eager download, inline uploads without their
# own barriers, fence waits that poll (TESSERA_VULKAN_SPIN_US, 20 ms), partial submissions after
# 2, 18, 82, 338 dispatches, ARGMAX (rows.comp), the step profile's medians. Suites with the
# defaults (unit without the coop tests, conformance with the ARGMAX cases, golden), then engine
# bench tg128: PROFILE=2 with HEAD's behaviour (knobs) and with the defaults, HEAD's plugin
# (head/, TESSERA_BACKEND_PATH) vs this one; on 1B each new part off alone and --greedy.
# Bundle as call 1 (gpu_idle1.sh); carry .dev/bundle-vk-idle and .gl.
cd "$(dirname "$0")/../../../.."
R=$PWD; T0=$(date +%s); BUDGET=${BUDGET:-110}
left() { [ $(( $(date +%s) - T0 )) -lt $BUDGET ]; }
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
B=$R/.dev/bundle-vk-idle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
L=/tmp/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || { export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "VK_DRIVER_FILES"; }
(for s in "llama-3.1-8b l8b" "llama-3.2-1b l1b" "qwen2.5-0.5b q05"; do set -- $s; python3 bench/make_checkpoint.py --shape $1 --out /tmp/$2 2>&1 | tail -1; touch /tmp/$2.done; done) > $L/ckpt.log 2>&1 &
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
timeout 50 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter=-*Coop* > $L/unit.log 2>&1; echo "unit rc=$? t=$(( $(date +%s) - T0 ))"
grep -E "^\[ +(FAILED|PASSED|SKIPPED) |Failure" $L/unit.log | head -8
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 40 $B/bin/op_conformance_test --gtest_brief=1 > $L/conf.log 2>&1; echo "conf rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) " $L/conf.log | head -4; echo "argmax cases run: $(grep -c "ARGMAX.*OK\|OK.*ARGMAX" $L/conf.log) listed: $(TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so $B/bin/op_conformance_test --gtest_list_tests | grep -c ARGMAX)"
TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 40 $B/bin/text_golden_test --gtest_brief=1 > $L/golden.log 2>&1; echo "golden rc=$? t=$(( $(date +%s) - T0 ))"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/golden.log | head -4
bench() {  # name ckpt reps [env...]; EXTRA: more bench flags
  local name=$1 c=$2 r=$3; shift 3
  while [ ! -f /tmp/$c.done ]; do sleep 1; done
  left || { echo "skip $name"; return; }
  env "$@" timeout 60 $B/bin/engine bench /tmp/$c --backend vulkan -p 16 -n 128 -r $r ${EXTRA:-} > $L/$name.log 2>&1
  echo "$name: $(grep -E "tg128[- ]|rror" $L/$name.log | head -2 | tr -s ' ' | tr '\n' ' ') t=$(( $(date +%s) - T0 ))"
  grep "step profile\|step medians" $L/$name.log | sed 's/.*step \(profile\|medians\)/  \1/'
}
OLD="TESSERA_VULKAN_FIRST_SUBMIT=8 TESSERA_VULKAN_SUBMIT_EVERY=32 TESSERA_VULKAN_SUBMIT_RAMP=1 TESSERA_VULKAN_SPIN_US=0"
bench l8b_prof_old l8b 1 TESSERA_VULKAN_PROFILE=2 TESSERA_VULKAN_EAGER_DOWNLOAD=0 $OLD
bench l8b_prof l8b 1 TESSERA_VULKAN_PROFILE=2
bench l8b_head l8b 3 TESSERA_BACKEND_PATH=$B/head
bench l8b_new l8b 3
for c in l1b q05; do
  bench ${c}_head $c 3 TESSERA_BACKEND_PATH=$B/head
  bench ${c}_new $c 3
done
bench l1b_noramp l1b 3 TESSERA_VULKAN_FIRST_SUBMIT=8 TESSERA_VULKAN_SUBMIT_EVERY=32 TESSERA_VULKAN_SUBMIT_RAMP=1
bench l1b_nospin l1b 3 TESSERA_VULKAN_SPIN_US=0
EXTRA=--greedy bench l1b_greedy_head l1b 3 TESSERA_BACKEND_PATH=$B/head
EXTRA=--greedy bench l1b_greedy_new l1b 3
cat $L/ckpt.log
tar czf $OUT/logs.tgz -C /tmp logs
echo "total $(( $(date +%s) - T0 )) s"
