#!/bin/bash
# vk19b (nineteenth session). Decode attention split over workgroups, same bits: attention.comp's
# 32 subgroups of a (query, head) spread over PARTS workgroups (the attention_split module; the
# last part to count merges the 32 states in subgroup order). Default on the H100: 4 parts
# (plugin.cc); knobs TESSERA_VULKAN_ATTN_PARTS (1 = off) / _SPLIT_GROUPS.
# old = HEAD f806bc6's Vulkan plugin (built from the pristine tree), new = this plugin.
# (1) vulkan_attn_lab: old dumps (8B / 1B / 0.5B head shapes; key counts 1..2048 in batches of 128
#     sequences, and T = 1 rows at 16 / 144 / 512 / 2048 keys), each new configuration checks the
#     bits (split forced on every grid: SPLIT_GROUPS=100000) and times the T = 1 calls.
# (2) the suites with the split forced on every grid; the engine A/B (new = defaults): md5 of
#     greedy runs, tg128 -r 2 old new new old on 1B and 8B, CUDA 8B once, 8B -p 512 old / new.
# On the H100, ONE call from the repo root, carrying .dev/bundle19.tar.xz (HEAD df38488's bundle:
# engine, cpu/cuda plugins, conformance/golden suites), .dev/vk19b/gpu (new.tar.xz: old + new
# vulkan plugins, vulkan_attn_lab, vulkan_backend_test, stripped; a copy of this script) and .gl:
# `bash .dev/vk19b/gpu/vk19b_gpu.sh` (~130 s; DEADLINE stops starting steps).
# History: call 1 (00:53 UTC) ran an earlier form of this script whose configuration lines lacked
# `env` (bash took the assignments for a command: rc 127), so it measured old's lab and the engine
# with the split off (results/vk19b/call1); call 2 (vk19b3_gpu.sh, results/vk19b/call2) measured
# the 8B lab shape (4 parts, with and without PREF, a prefetch since removed).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vk19blogs; mkdir -p $L
trap 'cp $L/console.log $OUT/ 2>/dev/null; tar czf $OUT/logs.tgz -C /tmp vk19blogs' EXIT
exec > >(tee $L/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-140}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
SHAPES=${SHAPES:-"llama-3.2-1b llama-3.1-8b"}
(for s in $SHAPES; do [ -f /tmp/$s.done ] && continue; python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done; done) &
tar xJf .dev/bundle19.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p $B/old /tmp/new && tar xJf .dev/vk19b/gpu/new.tar.xz -C /tmp/new
cp $P/*.so $B/old/ && cp /tmp/new/old/libtessera_backend_vulkan.so $B/old/
cp /tmp/new/libtessera_backend_vulkan.so $P/libtessera_backend_vulkan.so
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
md5sum $NEW $OLD | cut -c1-12
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
V=TESSERA_VULKAN_

# (1) Lab.
LABARGS="--reps 100 --keys 16,144,512,2048 --max-keys 2048 --batch 128 --copies 8"
echo "=== lab old t=$(el)"
TESSERA_VULKAN_PLUGIN=$OLD timeout 40 /tmp/new/vulkan_attn_lab $LABARGS --dump /tmp/old.bin > $L/lab_old.log 2>&1
echo "rc=$?"; grep -E "us/call|PASSED|FAILED" $L/lab_old.log
for parts in 4 2 8; do
  left || break
  echo "=== lab parts $parts t=$(el)"
  env ${V}ATTN_SPLIT_GROUPS=100000 ${V}ATTN_PARTS=$parts TESSERA_VULKAN_PLUGIN=$NEW \
    timeout 30 /tmp/new/vulkan_attn_lab $LABARGS --check /tmp/old.bin > $L/lab_p$parts.log 2>&1
  echo "rc=$?"; grep -E "us/call|same bits|PASSED|FAILED" $L/lab_p$parts.log | sed 's/Hq.*D *[0-9]* //'
done
echo "=== lab new (defaults) t=$(el)"
TESSERA_VULKAN_PLUGIN=$NEW timeout 30 /tmp/new/vulkan_attn_lab $LABARGS --check /tmp/old.bin > $L/lab_new.log 2>&1
echo "rc=$?"; grep -E "us/call|same bits|PASSED|FAILED" $L/lab_new.log | sed 's/Hq.*D *[0-9]* //'
KN="TESSERA_NOTHING=1"
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; *) echo $KN;; esac; }

echo "=== suites (new plugin, split forced on every grid) t=$(el)"
env $KN ${V}ATTN_SPLIT_GROUPS=100000 TESSERA_VULKAN_PLUGIN=$NEW timeout 60 /tmp/new/vulkan_backend_test --gtest_brief=1 \
  --gtest_filter='-*Coop*' > $L/vk_unit.log 2>&1; echo "unit rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/vk_unit.log | head -6
env $KN ${V}ATTN_SPLIT_GROUPS=100000 TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1; echo "conformance rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_conf.log | head -4
env $KN ${V}ATTN_SPLIT_GROUPS=100000 TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
  timeout 50 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1; echo "golden rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_golden.log | head -4

PROMPT="The capital of France is a city that has many old buildings and"
eb() { local v=$1; shift; env $(venv $v) timeout 60 $B/bin/engine bench "$@" 2>&1 | grep -E "\| (tg|pp)[0-9]|rror" | sed 's/^/    /'; }
md5run() { local s=$1 v=$2
  env $(venv $v) timeout 45 $B/bin/engine run /tmp/$s "$PROMPT" --raw -n 16 --temperature 0 --backend vulkan > $L/run_${s}_$v.txt 2> $L/run_${s}_$v.err
  echo "  $s $v rc=$? $(md5sum < $L/run_${s}_$v.txt | cut -c1-12)"; }
for s in llama-3.2-1b llama-3.1-8b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  echo "=== $s ready t=$(el)"
  md5run $s old; md5run $s new
  for v in old new new old; do
    left || break; echo "=== $s vulkan tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
  done
done
s=llama-3.1-8b
left && { echo "=== $s cuda tg128 (HEAD's plugin) t=$(el)"; eb old /tmp/$s --backend cuda -p 16 -n 128 -r 2; }
for v in old new; do
  left && { echo "=== $s vulkan p512 n128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 512 -n 128 -r 1; }
done
echo "total $(el) s"
