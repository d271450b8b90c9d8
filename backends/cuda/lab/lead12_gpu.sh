#!/bin/bash
# The lead's GPU call of the twelfth session, from the repo root, carrying .dev/bundle.tar.gz (this
# tree's bundle + test binaries), .dev/old12.tar.xz (HEAD 4579911's engine and CUDA / Vulkan / CPU
# plugins) and .gl (glvnd debs for Vulkan). Vulkan suites first (the CUDA plugin did not change this
# session), then engine A/B on one instance, interleaved: "new" = this tree, "oldp" = this engine
# with HEAD's plugins (kernel and recording changes alone); CUDA once a shape for the ratios.
# Steps stop starting past $DEADLINE s.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
rm -f /tmp/*.done; tar xzf .dev/bundle.tar.gz -C .dev
B=.dev/bundle; export LD_LIBRARY_PATH=$PWD/$B/lib; P=$PWD/$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
(for s in llama-3.1-8b qwen2.5-0.5b llama-3.2-1b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
rm -rf /tmp/oldp && cp -r $B /tmp/oldp && tar xJf .dev/old12.tar.xz -C /tmp/oldp/lib/tessera/backends/ && mv /tmp/oldp/lib/tessera/backends/engine /tmp/oldp/engine.old
eb() { local d=$PWD/$B; [ $1 = oldp ] && d=/tmp/oldp; shift
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench "$@" 2>&1 | grep -E "\| (pp|tg)[0-9]|rror" | sed 's/^/    /'; }
echo "=== Vulkan suites"
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
timeout 150 $B/bin/vulkan_backend_test --gtest_brief=1 > $OUT/vk_unit.log 2>&1; echo "vulkan_backend_test rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $OUT/vk_unit.log | head -8
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/vk_conf.log 2>&1; echo "vulkan conformance rc=$?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED TEST" $OUT/vk_conf.log | head -6
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1; echo "vulkan golden rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $OUT/vk_golden.log | head -4
echo "checks $(( $(date +%s) - T0 )) s"
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  for v in new oldp oldp new; do echo "=== $s vulkan tg128 $v"; eb $v --backend vulkan /tmp/$s -p 16 -n 128 -r 2; done
  echo "=== $s cuda tg128"; eb new --backend cuda /tmp/$s -p 16 -n 128 -r 2
  echo "  t=$(( $(date +%s) - T0 )) s"
  # Knob sweep on 8B (same bits by construction): the L2 warm's size, the decode fusions.
  [ $s = llama-3.1-8b ] && for k in TESSERA_VULKAN_L2_WARM_MB=12 TESSERA_VULKAN_L2_WARM_MB=28 \
      TESSERA_VULKAN_FUSE_SWIGLU=0 TESSERA_VULKAN_FUSE_ROPE_Q=0; do
    left || break; echo "=== $s vulkan tg128 new $k"; export $k; eb new --backend vulkan /tmp/$s -p 16 -n 128 -r 2; unset ${k%%=*}
  done
done
echo "total $(( $(date +%s) - T0 )) s"
