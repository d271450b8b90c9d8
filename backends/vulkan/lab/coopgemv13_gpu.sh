#!/bin/bash
# vk-coop13's GPU call (README "Cooperative-matrix GEMV", vk-coop13), from the repo root, carrying
# .gl (glvnd debs) and .dev/vk-coop13/bundle.tar.gz: lib/ (libstdc++, libgcc_s, libvulkan from
# the lead's bundle), bin/ (vulkan_coopgemv_lab, vulkan_backend_test of build/vk-coop13), new/
# (this tree's Vulkan plugin), old/ (HEAD e302fcc's, from .dev/old13.tar.xz). Steps, each skipped
# past $DEADLINE s:
#   1. vulkan_backend_test '*Coop*' with the new plugin (the GEMM's own check, every variant);
#   2. vulkan_coopgemv_lab, new plugin, $SHAPES: GEMV bits vs the GEMM (M = 1, 3, 8, 17, 32 vs
#      the GEMM's M = 512 run; GEMM 64 vs 512), errors vs a double reference, GPU time of the
#      GEMV (M = 1 variants $M1), the plain GEMV (M = 1, 8, 32) and the GEMM at M = 64;
#   3. the same lab on HEAD's plugin, --plain-only: the plain GEMV's time as HEAD ships it;
#   4. step 2 and 3 again on the 8B shapes at M = 1, 8 (A B A B) while time is left.
# Call 1 (10:37) ran the barrier form (knobs 1-3); call 2 adds the split form (knobs 4-6,
# M <= 8) with SKIP_UNIT=1 (the GEMM is unchanged since call 1's unit test); call 3 the split
# form with two column blocks a subgroup (knob 7) and the batched fold: SKIP_UNIT=1
# M1="1;2;5;7" MS=1,3,8 DEADLINE=100.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-200}
SHAPES=${SHAPES:-8b,1b,05b,rag} M1=${M1:-1;2;3;4;5;6} REPS=${REPS:-40} L2MB=${L2MB:-96}
SKIP_UNIT=${SKIP_UNIT:-0} M8=${M8:-1;5} MS=${MS:-1,3,8,17,32}
now() { echo $(( $(date +%s) - T0 )); }
left() { [ $(now) -lt $DEADLINE ]; }
mkdir -p /tmp/b && tar xzf .dev/vk-coop13/bundle.tar.gz -C /tmp/b; B=/tmp/b/bundle
export LD_LIBRARY_PATH=$B/lib
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
NVJ=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f $NVJ ] && ! ls /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ 2>/dev/null | grep -qi nvidia; then
  export VK_DRIVER_FILES=$NVJ
fi
NEW=$B/new/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
echo "=== unit test '*Coop*' (new plugin)  t=$(now)"
[ $SKIP_UNIT = 1 ] || TESSERA_VULKAN_PLUGIN=$NEW timeout 90 $B/bin/vulkan_backend_test --gtest_filter='*Coop*' --gtest_brief=1 2>&1 |
  grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure|error|Value of|variant" | head -20 | tee $OUT/unit.log
lab() { local plugin=$1 shapes=$2 budget=$3 log=$4; shift 4
  TESSERA_VULKAN_PLUGIN=$plugin timeout $((budget + 30)) $B/bin/vulkan_coopgemv_lab --shapes $shapes \
    --reps $REPS --l2-mb $L2MB --deadline $budget "$@" 2>&1 | tee -a $log; }
echo "=== lab new plugin $SHAPES  t=$(now)"
left && lab $NEW $SHAPES $(( DEADLINE - $(now) - 60 )) $OUT/lab_new.log --m1 "$M1" --m8 "$M8" --m $MS --stats
echo "=== lab HEAD plugin, plain only, $SHAPES  t=$(now)"
left && lab $OLD $SHAPES $(( DEADLINE - $(now) - 10 )) $OUT/lab_old.log --plain-only --m $MS
for rep in 2; do
  echo "=== repeat $rep: 8b new, then HEAD  t=$(now)"
  left && lab $NEW 8b $(( (DEADLINE - $(now)) / 2 )) $OUT/lab_rep.log --m1 "$M1" --m8 "$M8" --m 1,8
  left && lab $OLD 8b $(( DEADLINE - $(now) )) $OUT/lab_rep.log --plain-only --m 1,8
done
echo "total $(now) s"
