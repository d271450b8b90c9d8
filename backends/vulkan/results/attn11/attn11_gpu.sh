#!/bin/bash
# vk-attn (eleventh session): decode attention on attention_decode.comp, on the H100. From the
# repo root, carrying .dev/vk-attn/bundle.tar.gz (bash ci/bundle.sh build/vk-attn
# .dev/vk-attn/bundle + stripped vulkan_backend_test, op_conformance_test, text_golden_test in
# bin/ and HEAD's Vulkan plugin as old/libtessera_backend_vulkan.so) and .gl (glvnd debs).
# Suites first, then per-dispatch profiles (TESSERA_VULKAN_PROFILE=1) and engine tg128, A/B
# interleaved: "new" = TESSERA_VULKAN_DECODE_ATTENTION=1 (attention_decode.comp; the default
# in calls 1-2), "off" = the same plugin with it off (attention.comp, the default now), "old" =
# HEAD's plugin. Steps stop starting past $DEADLINE s. Logs in $OUT. Knobs (a shorter call):
# UNIT_FILTER, CONF_FILTER (gtest filters, default all), GOLDEN=0, MODELS (the shapes, in order),
# ROUNDS (tg128 new/off repetitions, 2).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-170}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
tar xzf .dev/vk-attn/bundle.tar.gz -C .dev/vk-attn
B=$PWD/.dev/vk-attn/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
MODELS=${MODELS:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}
for s in $MODELS; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done) &
done
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" ||
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices -v 2>&1 | grep -A1 "^vulkan"
rm -rf /tmp/oldb && cp -r $B /tmp/oldb && cp $B/../old/libtessera_backend_vulkan.so /tmp/oldb/lib/tessera/backends/
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
echo "=== vulkan_backend_test"
timeout 100 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter="${UNIT_FILTER:-*}" \
  > $OUT/unit.log 2>&1; echo "rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure|Expected|Which" $OUT/unit.log | head -12
echo "=== op conformance"
TESSERA_CONFORMANCE_PLUGINS=$TESSERA_VULKAN_PLUGIN timeout 60 $B/bin/op_conformance_test \
  --gtest_brief=1 --gtest_filter="${CONF_FILTER:-*}" > $OUT/conf.log 2>&1; echo "rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST|out of tolerance" $OUT/conf.log | head -8
[ "${GOLDEN:-1}" = 1 ] && echo "=== golden" &&
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan \
  TESSERA_TEST_PLUGINS=$TESSERA_VULKAN_PLUGIN:$P/libtessera_backend_cpu.so \
  timeout 60 $B/bin/text_golden_test --gtest_brief=1 > $OUT/golden.log 2>&1; echo "rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $OUT/golden.log | head -6
echo "checks $(( $(date +%s) - T0 )) s"
# eb VARIANT ARGS...: engine bench with the new plugin, it with DECODE_ATTENTION=0, or HEAD's.
eb() {
  local v=$1 d=$B; shift
  [ $v = old ] && d=/tmp/oldb
  ( [ $v = new ] && export TESSERA_VULKAN_DECODE_ATTENTION=1
    [ $v = off ] && export TESSERA_VULKAN_DECODE_ATTENTION=0
    LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine bench --backend vulkan "$@" 2>&1 ) |
    grep -E "\| (pp|tg)[0-9]|rror|attention|submissions" | sed "s/^/  $v /"
}
prof() {  # per-dispatch GPU times, a context of ~144 keys (p 128 + 32 tokens) and of ~1040
  for v in new off; do
    TESSERA_VULKAN_PROFILE=1 eb $v /tmp/$1 -p 128 -n 32 -r 1 | grep -E "attention|submissions"
  done
  # One chunk a row (no fold, Hkv workgroups a sequence): what the split costs or saves; and
  # chunks of at least 8 keys (twice the workgroups at 144 keys).
  for k in 1000000 8; do
    TESSERA_VULKAN_DECODE_ATTN_MIN_KEYS=$k TESSERA_VULKAN_PROFILE=1 eb new /tmp/$1 -p 128 \
      -n 32 -r 1 | grep -E "attention_decode" | sed "s/^/  min-keys $k /"
  done
}
for s in $MODELS; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  echo "=== $s profile p128 n32 (new, off)"; prof $s
  for r in $(seq ${ROUNDS:-2}); do
    for v in new off old; do
      [ $v = old ] && [ $r = 2 ] && continue
      echo "=== $s tg128 $v r$r"; eb $v /tmp/$s -p 16 -n 128 -r 3
    done
  done
  echo "  t=$(( $(date +%s) - T0 )) s"
done
if left && [ -f /tmp/llama-3.1-8b.done ]; then
  echo "=== llama-3.1-8b long context p1024 n128 (new, off) + profile"
  for v in new off; do eb $v /tmp/llama-3.1-8b -p 1024 -n 128 -r 1; done
  for v in new off; do
    TESSERA_VULKAN_PROFILE=1 eb $v /tmp/llama-3.1-8b -p 1024 -n 16 -r 1 | grep -E "attention"
  done
fi
if left && [ -f /tmp/llama-3.1-8b.done ]; then
  echo "=== llama-3.1-8b chunk sizes: profile p128 n32 with at least 8 / 32 keys a chunk"
  for k in 8 32; do
    TESSERA_VULKAN_DECODE_ATTN_MIN_KEYS=$k TESSERA_VULKAN_PROFILE=1 eb new /tmp/llama-3.1-8b \
      -p 128 -n 32 -r 1 | grep -E "attention" | sed "s/^/  min$k /"
  done
fi
echo "total $(( $(date +%s) - T0 )) s"
