#!/bin/bash
# The lead's last call of the twenty-fifth session (H200): the scheduler's batch-invariance suite
# (server_scheduler_test: alone = batched = chunked = preempted = prefix-cached) through the
# Vulkan plugin with vk25-replay on, off, and keyed every step, on NVIDIA's driver.
#   run(command="bash backends/vulkan/lab/lead25d_gpu.sh", carry=[".gl", ".dev/bundle25.tar.xz",
#       ".dev/lead25/new.tar.xz"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
tar xJf .dev/bundle25.tar.xz -C .dev && tar xJf .dev/lead25/new.tar.xz -C .dev/lead25
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
NEW=$PWD/.dev/lead25/new/libtessera_backend_vulkan.so
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for r in 1 0 2; do
  TESSERA_VULKAN_REPLAY=$r TESSERA_LOG_LEVEL=debug TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
    TESSERA_TEST_BACKEND=vulkan TESSERA_DEFAULT_MODEL=$PWD/models/default \
    timeout 120 $B/bin/server_scheduler_test --gtest_brief=1 > $OUT/sched_replay$r.log 2>&1
  echo "REPLAY=$r rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/sched_replay$r.log | tr '\n' ' ')"
  grep -o "replay: [0-9]* executes replayed ([0-9]* entries recorded, [0-9]* by the view fast path), [0-9]* direct" $OUT/sched_replay$r.log | head -3
done
