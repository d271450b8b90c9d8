#!/bin/bash
# The lead's check of the twentieth session's tree on the H100, one call: this tree's Vulkan (and
# CUDA) plugins against HEAD d0b80cb's (.dev/old20.tar.xz; the engine is this tree's on both
# sides). From the repo root, carrying .dev/bundle20n.tar.xz (ci/bundle.sh of build/perf + test
# binaries), .dev/old20.tar.xz and .gl:
#   1. (CUDA_SUITES=1) CUDA op conformance / text golden / server_scheduler_test, argmax graph
#   2. Vulkan: vulkan_backend_test, op conformance and golden with --backend vulkan; vulkan_attn_lab
#      bits of the new decode attention against HEAD's (default grids and the split forced)
#   3. greedy md5 per side, Vulkan 16 tokens (1B, 8B)
#   4. interleaved: Vulkan 8B tg128 (`-p 16 -n 128 -r 2`) prev / new / new without the L2 warm-up,
#      CUDA 8B tg128 between them (the ratio), tg64 at depth 512; Vulkan tg128 1B / 0.5B
# No step starts past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-300}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b llama-3.2-1b qwen2.5-0.5b
tar xJf ${BUNDLE:-.dev/bundle20n.tar.xz} -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/prev && cp -r $B /tmp/prev && mkdir -p /tmp/x && tar xJf ${OLD:-.dev/old20.tar.xz} -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so /tmp/x/libtessera_backend_vulkan.so /tmp/prev/lib/tessera/backends/
# flags: vk20-attn's extras (results/vk20attn/flags_not_kept.diff: the block-table preload by
# subgroup shuffle, the merge weights once in shared memory, the early table load) built on this
# tree, in .dev/lead20/flags.tar.xz when carried
rm -rf /tmp/flags; if [ -f .dev/lead20/flags.tar.xz ]; then cp -r $B /tmp/flags &&
  tar xJf .dev/lead20/flags.tar.xz -C /tmp/x && cp /tmp/x/flags_vulkan.so /tmp/flags/lib/tessera/backends/libtessera_backend_vulkan.so; fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
if [ -n "${CUDA_SUITES:-}" ]; then
  echo "=== CUDA suites"; cuda_suites
  TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 90 $B/bin/cuda_argmax_graph_test --gtest_brief=1 > $OUT/argmax.log 2>&1
  echo "cuda_argmax_graph_test rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/argmax.log | tr '\n' ' ')"
fi
t
echo "=== Vulkan"
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 150 $B/bin/vulkan_backend_test --gtest_brief=1 > $OUT/vk_unit.log 2>&1
echo "vulkan_backend_test rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/vk_unit.log | tr '\n' ' ')"
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 150 $B/bin/op_conformance_test \
  --gtest_brief=1 > $OUT/vk_conf.log 2>&1
echo "vulkan conformance rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/vk_conf.log | tr '\n' ' ')"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=vulkan \
  TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 150 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
echo "vulkan golden rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/vk_golden.log | tr '\n' ' ')"
LABARGS="--reps 50 --keys 16,144,512 --max-keys 1024 --batch 128 --copies 8"
TESSERA_VULKAN_PLUGIN=/tmp/prev/lib/tessera/backends/libtessera_backend_vulkan.so timeout 60 \
  $B/bin/vulkan_attn_lab $LABARGS --dump /tmp/attn_old.bin > $OUT/vk_attn_old.log 2>&1
echo "vulkan_attn_lab old rc=$?"; grep -E "us/call" $OUT/vk_attn_old.log | sed 's/^/    old /'
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 60 \
  $B/bin/vulkan_attn_lab $LABARGS --check /tmp/attn_old.bin > $OUT/vk_attn_new.log 2>&1
echo "vulkan_attn_lab new rc=$?"; grep -E "us/call|same bits|differ" $OUT/vk_attn_new.log | sed 's/^/    new /'
TESSERA_VULKAN_ATTN_SPLIT_GROUPS=100000 TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 60 \
  $B/bin/vulkan_attn_lab $LABARGS --check /tmp/attn_old.bin > $OUT/vk_attn_forced.log 2>&1
echo "vulkan_attn_lab split forced rc=$?"; grep -E "same bits|differ" $OUT/vk_attn_forced.log | sed 's/^/    forced /'
if [ -d /tmp/flags ]; then
  TESSERA_VULKAN_PLUGIN=/tmp/flags/lib/tessera/backends/libtessera_backend_vulkan.so timeout 60 \
    $B/bin/vulkan_attn_lab $LABARGS --check /tmp/attn_old.bin > $OUT/vk_attn_flags.log 2>&1
  echo "vulkan_attn_lab flags rc=$?"; grep -E "us/call|same bits|differ" $OUT/vk_attn_flags.log | sed 's/^/    flags /'
fi
t
ab() { local side=$1 d=$B; shift; [ $side = prev ] && d=/tmp/prev; [ $side = flags ] && d=/tmp/flags
  LD_LIBRARY_PATH=$d/lib timeout 120 $d/bin/engine "$@" 2>&1 | grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  i=0; while [ ! -f /tmp/$s.done ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
  if [ $s != qwen2.5-0.5b ]; then for side in prev new; do d=$B; [ $side = prev ] && d=/tmp/prev
    LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine --backend vulkan run /tmp/$s "t1 t2 t3 t4" --raw -n 16 --temperature 0 2>/dev/null > /tmp/vrun_${s}_$side.txt
    echo "  $s $side vulkan md5 $(md5sum < /tmp/vrun_${s}_$side.txt | cut -c1-12)"; done; fi
  left || continue
  echo "=== $s  [t=$(( $(date +%s) - T0 )) s]"
  if [ $s = llama-3.1-8b ]; then
    # the ratio: Vulkan (prev, new) and CUDA interleaved; nol2 = new without the L2
    # warm-up beside decode attention (vk-l2's default was set when attention took 20-40 us)
    SIDES="prev new cuda new prev nol2 cuda new nol2 new"
    [ -d /tmp/flags ] && SIDES="prev new flags cuda new flags nol2 prev cuda new flags nol2"
    for side in $SIDES; do
      case $side in
        cuda) left && ab new bench --backend cuda /tmp/$s -p 16 -n 128 -r 2 | sed 's/| tg/| cuda-tg/' ;;
        nol2) left && TESSERA_VULKAN_L2_WARM=0 ab new bench --backend vulkan /tmp/$s -p 16 -n 128 -r 2 | sed 's/| tg/| nol2-vulkan-tg/' ;;
        flags) left && ab flags bench --backend vulkan /tmp/$s -p 16 -n 128 -r 2 | sed 's/| tg/| flags-vulkan-tg/' ;;
        *) left && ab $side bench --backend vulkan /tmp/$s -p 16 -n 128 -r 2 | sed 's/| tg/| vulkan-tg/' ;;
      esac
    done
    for side in prev new; do
      left && ab $side bench --backend vulkan /tmp/$s -p 0 -n 64 -d 512 -r 1 | sed 's/| tg/| vulkan-tg/'; done
  else
    for side in prev new new prev; do
      left && ab $side bench --backend vulkan /tmp/$s -p 16 -n 128 -r 2 | sed 's/| tg/| vulkan-tg/'; done
  fi
done
echo "total $(( $(date +%s) - T0 )) s"
