#!/bin/bash
# Runs on the GPU machine from the repo root against a relocatable bundle in .dev/bundle-vk
# (bash ci/bundle.sh BUILD .dev/bundle-vk, plus the test binaries; see README.md; carry .gl with
# Debian's glvnd debs, which the NVIDIA driver needs on hosts without them): which Vulkan
# driver the loader finds, engine devices -v, vulkan_backend_test, the op-conformance suite, the
# golden suite and `engine bench` on a Qwen2.5-0.5B-shaped checkpoint. Logs go to $OUT.
B=${TESSERA_BUNDLE:-.dev/bundle-vk}
OUT=${OUT:-/tmp/vk-out}
mkdir -p "$OUT"
P=$PWD/$B/lib/tessera/backends
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "=== loader and driver manifests"
ldconfig -p | grep -c libvulkan
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>&1 | head
have_vk() { $B/bin/engine devices 2>&1 | grep -q "vulkan:0"; }
echo "=== engine devices -v"
$B/bin/engine devices -v 2>&1 | grep -A2 "^vulkan"
if ! have_vk; then
  echo "=== loader diagnostics"
  grep -h library_path /usr/share/vulkan/icd.d/*.json /usr/local/nvidia/share/vulkan/icd.d/*.json
  lib=$(sed -n 's/.*"library_path": *"\([^"]*\)".*/\1/p' /usr/share/vulkan/icd.d/nvidia_icd.json | head -1)
  p=$(ldconfig -p | awk -v n="$(basename "$lib")" '$1 == n { print $NF; exit }')
  echo "ICD library $lib -> ${p:-not in ldconfig}"
  [ -n "$p" ] && ldd "$p" | grep "not found"
  VK_LOADER_DEBUG=error,warn,driver $B/bin/engine devices 2>&1 | grep -iv "highway\|cpu:0" | head -20
  # The NVIDIA ICD (libGLX_nvidia) needs glvnd's libraries: Debian's, from .gl (not the loader).
  for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
  echo "retry with glvnd (bundled loader)"; have_vk && echo "vulkan found"
fi
if ! have_vk; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  echo "retry with VK_DRIVER_FILES"; have_vk && echo "vulkan found"
fi
if ! have_vk; then
  for f in .gl/*libvulkan1*.deb; do dpkg -x "$f" /; done; ldconfig
  echo "retry with Debian's libvulkan1 installed too"; have_vk && echo "vulkan found"
fi
$B/bin/engine devices -v 2>&1 | grep -A2 "^vulkan"
have_vk || exit 1
echo "=== vulkan_backend_test"
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 60 $B/bin/vulkan_backend_test 2>&1 |
  grep -E "device 0|absence|PASSED|FAILED|Failure|Expected|Which"
echo "=== conformance"
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 60 \
  $B/bin/op_conformance_test --gtest_brief=1 > "$OUT/conformance.log" 2>&1
echo "conformance rc=$?"
grep -E "tests ran|PASSED|FAILED|out of tolerance|max abs|got" "$OUT/conformance.log" | head -40
echo "=== golden"
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan \
  TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 60 $B/bin/text_golden_test --gtest_brief=1 > "$OUT/golden.log" 2>&1
echo "golden rc=$?"
grep -E "tests ran|PASSED|FAILED|worst|Failure|vulkan backend" "$OUT/golden.log" | head -30
echo "=== bench"
timeout 60 python3 bench/make_checkpoint.py --shape qwen2.5-0.5b --out /tmp/q05 2>&1 | tail -1
timeout ${BENCH_TIMEOUT:-90} $B/bin/engine bench --backend vulkan /tmp/q05 -p ${PP:-512} -n ${TG:-64} \
  -r 2 2>&1 | tee "$OUT/bench_vulkan.log" | tail -12
