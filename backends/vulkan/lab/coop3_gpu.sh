#!/bin/bash
# vk-coop3's GPU call (README "Cooperative-matrix GEMM, third pass"), from the repo root,
# carrying .gl (glvnd debs) and .dev/vk-coop3/bundle.tar.gz: a bundle of build/vk-coop3 (engine,
# core, CUDA / CPU plugins copied from the lead's build/perf) whose lib/tessera/backends Vulkan
# plugin is build/perf's ("old", HEAD), plus new/ (this tree's libtessera_backend_vulkan.so,
# vulkan_gemm_lab, vulkan_backend_test). Steps, each skipped past $DEADLINE s:
#   1. vulkan_backend_test '*Coop*' (every variant) with the new plugin;
#   2. vulkan_gemm_lab, new plugin, 8B shapes at M = 512: variants $SWEEP (16 and 15 = the old
#      default rule's two), with pipeline statistics (--stats: registers, shared memory);
#   3. 16, 15, $KEEP and step 2's 3 fastest others (or $MORE) on the 8B shapes at M = 2048 and
#      the $MORE_SHAPES shapes at 512; the fastest passing rule over steps 2 + 3 (coop2_pick.py);
#   4. engine bench pp512, COOPMAT=1: new plugin (that rule) and old plugin (its default),
#      interleaved new old new old, then the new plugin with the old rule; CUDA once; $MODELS;
#   5. TESSERA_VULKAN_PROFILE=1 engine bench 8B pp$PROFILES (new): attention vs GEMM.
# Calls 1 and 2 (2026-11-27) swept variants that are gone now (README: COOP_XF32, COOP_OFFS and
# tile shapes that lost); their logs are in results/coop3/. For the next lever (COOP_SWZ, written
# but never run: results/coop3/swz_untested.diff) run e.g. SWEEP="17;26;18;28"
# MORE="17;26;18;28" MORE_SHAPES=05b MODELS=llama-3.1-8b PROFILES= with such variants built.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-170}
SWEEP=${SWEEP:-16;15;17;18} KEEP=${KEEP:-17;18}
MORE_SHAPES=${MORE_SHAPES:-1b,05b} MODELS=${MODELS:-llama-3.1-8b qwen2.5-0.5b} PROFILES=${PROFILES-512 2048}
now() { echo $(( $(date +%s) - T0 )); }
left() { [ $(now) -lt $DEADLINE ]; }
mkdir -p /tmp/b && tar xzf .dev/vk-coop3/bundle.tar.gz -C /tmp/b; B=/tmp/b
export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
(for s in llama-3.1-8b qwen2.5-0.5b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep -E "^ *(vulkan|cuda)"
NEW=$B/new/libtessera_backend_vulkan.so OLD=$P/libtessera_backend_vulkan.so
cp -r $B /tmp/bn && cp $NEW /tmp/bn/lib/tessera/backends/  # the engine with the new plugin
echo "=== unit test (new plugin)  t=$(now)"
TESSERA_VULKAN_PLUGIN=$NEW timeout 90 $B/new/vulkan_backend_test --gtest_filter='*Coop*' --gtest_brief=1 2>&1 |
  grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure|error|Value of|variant" | head -20 | tee $OUT/unit.log
lab() { local vs=$1 shapes=$2 m=$3 log=$4; shift 4
  TESSERA_VULKAN_PLUGIN=$NEW timeout 100 $B/new/vulkan_gemm_lab --variants "$vs" --shapes $shapes --m $m --reps ${REPS:-3} --samples 256 "$@" 2>&1 | tee -a $log; }
echo "=== lab 8B M=512, all variants  t=$(now)"
left && lab "$SWEEP" 8b 512 $OUT/lab_sweep.log --stats
TOP=$(python3 - $OUT/lab_sweep.log "$KEEP" <<'EOF'
import re, sys
t = {}
for line in open(sys.argv[1]):
    m = re.match(r"^8b\s+512 .{20} (\S+)\s+([\d.]+)\s+([\d.]+)\s+\S+\s+\S+ (.*)", line)
    if m and "FAILED" not in m.group(4) and m.group(1) not in ["16", "15"] + sys.argv[2].split(";"):
        t.setdefault(m.group(1), []).append(float(m.group(2)) + float(m.group(3)))
full = {v: sum(x) for v, x in t.items() if len(x) == 4}
print(";".join(sorted(full, key=full.get)[:3]))
EOF
)
echo "top 3 at 8B M=512: $TOP  t=$(now)"
VS=${MORE:-16;15;$KEEP;$TOP}
left && lab "$VS" 8b 2048 $OUT/lab_more.log
left && lab "$VS" $MORE_SHAPES 512 $OUT/lab_more.log
cat $OUT/lab_sweep.log $OUT/lab_more.log > /tmp/lab_all.log
BEST=$(python3 backends/vulkan/lab/coop2_pick.py /tmp/lab_all.log)
echo "best passing choice over all rows: ${BEST:-none}  t=$(now)"
eb() { local d=$1 tag=$2; shift 2; echo "=== $tag  t=$(now)"
  LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench "$@" 2>&1 | grep -E "\| (pp|tg)[0-9]|rror" | sed 's/^/    /'; }
ab() { local s=$1 rule=$2
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left && eb $B "$s pp512 cuda" /tmp/$s --backend cuda -p 512 -n 0 -r 2
  for rep in 1 2; do
    [ -n "$rule" ] && left && TESSERA_VULKAN_COOPMAT=1 TESSERA_VULKAN_COOPMAT_TILE=$rule eb /tmp/bn "$s pp512 vulkan new coop $rule" /tmp/$s --backend vulkan -p 512 -n 0 -r 2
    left && TESSERA_VULKAN_COOPMAT=1 eb $B "$s pp512 vulkan old coop" /tmp/$s --backend vulkan -p 512 -n 0 -r 2
  done
  # The new plugin with the old rule (the same GEMM modules as the old plugin's default).
  left && TESSERA_VULKAN_COOPMAT=1 TESSERA_VULKAN_COOPMAT_TILE=16@128,15 eb /tmp/bn "$s pp512 vulkan new coop 16@128,15" /tmp/$s --backend vulkan -p 512 -n 0 -r 2; }
for s in $MODELS; do ab $s "$BEST"; done 2>&1 | tee $OUT/engine.log
for p in $PROFILES; do
  [ -n "$BEST" ] && [ $(now) -lt $(( DEADLINE + 20 )) ] || break
  echo "=== profile 8B pp$p new $BEST  t=$(now)"
  TESSERA_VULKAN_PROFILE=1 TESSERA_VULKAN_COOPMAT=1 TESSERA_VULKAN_COOPMAT_TILE=$BEST LD_LIBRARY_PATH=/tmp/bn/lib \
    timeout 40 /tmp/bn/bin/engine bench /tmp/llama-3.1-8b --backend vulkan -p $p -n 0 -r 1 > $OUT/profile$p.log 2>&1
  grep -E "calls|profile|sum of|pp$p" $OUT/profile$p.log | head -30
done
echo "total $(now) s"
