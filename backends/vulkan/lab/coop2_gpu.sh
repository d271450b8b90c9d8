#!/bin/bash
# vk-coop2's GPU call (README "Cooperative-matrix GEMM, second pass"), from the repo root,
# carrying .gl (glvnd debs) and .dev/vkc2 (vkc2.tar.xz: the HEAD bundle's engine, libraries and
# CUDA / CPU / Vulkan plugins, plus new/libtessera_backend_vulkan.so, vulkan_gemm_lab and
# vulkan_backend_test of this tree). Steps, each skipped past $DEADLINE s:
#   1. vulkan_gemm_lab on the 8B shapes (M = 512, 2048) and the 1B / Qwen shapes (512): the
#      HEAD plugin's coop GEMM, then tile variants of the new plugin, same data, same card;
#      the fastest passing choice (coop2_pick.py), then that choice alone;
#   2. vulkan_backend_test CoopGemmMatchesAReference (every variant) with the new plugin;
#   3. engine bench pp512 / pp2048: CUDA vs Vulkan coop (new, the lab's fastest passing variant)
#      vs Vulkan coop (HEAD), 8B first, then 1B and Qwen2.5-0.5B pp512.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-170}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
mkdir -p /tmp/b && tar xJf .dev/vkc2/vkc2.tar.xz -C /tmp/b; B=/tmp/b
export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
(for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep -E "^ *(vulkan|cuda)"
NEW=$B/new/libtessera_backend_vulkan.so OLD=$P/libtessera_backend_vulkan.so
# The engine finds plugins beside libtessera_core.so: a second tree with the new Vulkan plugin.
cp -r $B /tmp/bn && cp $NEW /tmp/bn/lib/tessera/backends/
# lab A B: the 8B shapes at M = 512 and 2048, the 1B / Qwen2.5-0.5B shapes at 512.
lab() { local plugin=$1 vs=$2 log=$3
  TESSERA_VULKAN_PLUGIN=$plugin timeout 100 $B/bin/vulkan_gemm_lab --variants "$vs" --shapes 8b --m 512,2048 --reps ${REPS:-3} --samples 256 2>&1 | tee $log
  TESSERA_VULKAN_PLUGIN=$plugin timeout 60 $B/bin/vulkan_gemm_lab --variants "$vs" --shapes 1b,05b --m 512 --reps ${REPS:-3} --samples 256 2>&1 | tee -a $log; }
echo "=== lab: HEAD coop (0)"
lab $OLD 0 $OUT/lab_old.log
echo "=== lab: new variants  t=$(( $(date +%s) - T0 ))"
lab $NEW "${VARIANTS:-5;6;9;13;14;15;16}" $OUT/lab_new.log
# (Variants are separated by ';' since vk-coop2's call 2; that call ran the lab with ',', so its
# lab_best "16@128" / "15" rows are v16 and v15 alone; the engine got the whole rule.)
# The fastest passing choice: one variant, or "A@T,B" (A where it makes >= T workgroups, else B;
# run_ops.cc PickCoopKernel), over the lab's rows (tile sizes as run_ops.cc kCoopKernels).
BEST=$(python3 backends/vulkan/lab/coop2_pick.py $OUT/lab_new.log)
echo "best passing choice: ${BEST:-none}  t=$(( $(date +%s) - T0 ))"
[ -n "$BEST" ] && left && lab $NEW "$BEST" $OUT/lab_best.log
left && { TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_filter='*Coop*' --gtest_brief=1 2>&1 | grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure|error|Value of" | head -12; }
eb() { local d=$1 tag=$2; shift 2; echo "=== $tag  t=$(( $(date +%s) - T0 ))"
  LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench "$@" 2>&1 | grep -E "\| (pp|tg)[0-9]|rror" | sed 's/^/    /'; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  for p in 512 2048; do
    [ $s != llama-3.1-8b ] && [ $p = 2048 ] && continue
    left || break
    eb $B "$s pp$p cuda" /tmp/$s --backend cuda -p $p -n 0 -r 2
    [ -n "$BEST" ] && left && TESSERA_VULKAN_COOPMAT=1 TESSERA_VULKAN_COOPMAT_TILE=$BEST eb /tmp/bn "$s pp$p vulkan new coop v$BEST" /tmp/$s --backend vulkan -p $p -n 0 -r 2
    left && TESSERA_VULKAN_COOPMAT=1 eb $B "$s pp$p vulkan HEAD coop" /tmp/$s --backend vulkan -p $p -n 0 -r 2
  done
done
echo "total $(( $(date +%s) - T0 )) s"
