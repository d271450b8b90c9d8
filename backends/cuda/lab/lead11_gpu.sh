#!/bin/bash
# The lead's GPU call of the eleventh session, from the repo root, carrying .dev/bundle.tar.gz (the
# tree's bundle + test binaries + labs), .dev/old11.tar.xz (the tenth session's engine and CUDA /
# Vulkan / CPU plugins, HEAD b37aeeb) and .gl (glvnd debs for Vulkan). Vulkan suites first (the
# plugin changed this session), then engine A/B on one instance: "new" = this tree, "oldp" = this
# engine with the tenth session's plugins (kernel changes alone); CUDA on the same instance for the
# Vulkan / CUDA ratios. Steps stop starting past $DEADLINE s. Knobs: VKENV (extra env for "new").
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-400}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
tar xzf .dev/bundle.tar.gz -C .dev
B=.dev/bundle; export LD_LIBRARY_PATH=$PWD/$B/lib; P=$PWD/$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
(for s in llama-3.1-8b qwen2.5-0.5b llama-3.2-1b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
mkb() { rm -rf /tmp/$1 && cp -r $B /tmp/$1 && tar xJf .dev/old11.tar.xz -C /tmp/$1/lib/tessera/backends/ && mv /tmp/$1/lib/tessera/backends/engine /tmp/$1/engine.old; }
mkb oldp
eb() { local d=$PWD/$B; [ $1 = oldp ] && d=/tmp/oldp; shift
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench "$@" 2>&1 | grep -E "\| (pp|tg)[0-9]|rror" | sed 's/^/    /'; }
echo "=== Vulkan"
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
timeout 150 $B/bin/vulkan_backend_test --gtest_brief=1 > $OUT/vk_unit.log 2>&1; echo "vulkan_backend_test rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $OUT/vk_unit.log | head -8
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/vk_conf.log 2>&1; echo "conformance rc=$?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED TEST" $OUT/vk_conf.log | head -6
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1; echo "golden rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $OUT/vk_golden.log | head -6
echo "checks $(( $(date +%s) - T0 )) s"
for s in llama-3.1-8b qwen2.5-0.5b llama-3.2-1b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  for r in 1 2; do for v in new oldp; do echo "=== $s vulkan tg128 $v r$r"; eb $v --backend vulkan /tmp/$s -p 16 -n 128 -r 2; done; done
  echo "=== $s cuda tg128"; eb new --backend cuda /tmp/$s -p 16 -n 128 -r 2
  echo "  t=$(( $(date +%s) - T0 )) s"
done
left && for s in llama-3.1-8b qwen2.5-0.5b; do
  echo "=== $s pp512 vulkan coop new / oldp, vulkan default new, cuda"
  TESSERA_VULKAN_COOPMAT=1 eb new --backend vulkan /tmp/$s -p 512 -n 0 -r 2
  TESSERA_VULKAN_COOPMAT=1 eb oldp --backend vulkan /tmp/$s -p 512 -n 0 -r 2
  eb new --backend vulkan /tmp/$s -p 512 -n 0 -r 2; eb new --backend cuda /tmp/$s -p 512 -n 0 -r 2
done
left && { echo "=== 8B long context vulkan new / oldp"; for v in new oldp; do eb $v --backend vulkan /tmp/llama-3.1-8b -p 2048 -n 64 -r 1; done; }
echo "total $(( $(date +%s) - T0 )) s"
