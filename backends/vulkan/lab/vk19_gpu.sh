#!/bin/bash
# vk19 (nineteenth session). The non-GEMV dispatches of a decode layer and the parameter ring.
# (1) Measure: TESSERA_VULKAN_PROFILE=1 (a timestamp pair around every dispatch, so each is timed
# alone) of Llama-3.1-8B decode at ~20 / ~150 / ~1040 keys (`engine run` with a prompt of N
# WordLevel tokens "t1 .. tN", then -n 32), and TESSERA_VULKAN_LAB_EMPTY=3 (the k RoPE + KV
# writes and the attention dispatches replaced by empty one-workgroup dispatches: WRONG outputs,
# a bound): what a dispatch + its barrier costs without the work. (2) The change: the parameter
# ring (every dispatch's parameter block, the first thing each workgroup loads) in host-visible
# VRAM instead of system memory (plugin.cc, TESSERA_VULKAN_RING_VRAM=0 = as before). A/B: old =
# HEAD df38488's plugin (bundle19), new = this plugin (defaults), sys = new with RING_VRAM=0.
# On the H100, ONE call from the repo root, carrying .dev/bundle19.tar.xz (HEAD's bundle:
# engine, plugins, suites), .dev/vk19/gpu (new.tar.xz: the new vulkan plugin + vulkan_gemv_lab,
# stripped; a copy of this script) and .gl (glvnd): `bash .dev/vk19/gpu/vk19_gpu.sh`.
# Call 1's record (00:33 UTC, 154 s): results/vk19/call1/ (README, vk19 section). The steps after
# the 140-token profiles (1024 / 8 tokens, the empty dispatches with the VRAM ring, old's md5
# runs) were past its DEADLINE and did not run.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vk19logs; mkdir -p $L
trap 'cp $L/console.log $OUT/ 2>/dev/null; tar czf $OUT/logs.tgz -C /tmp vk19logs' EXIT
exec > >(tee $L/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
SHAPES=${SHAPES:-"llama-3.2-1b llama-3.1-8b"}
for s in $SHAPES; do rm -f /tmp/$s.done; done
(for s in $SHAPES; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done; done) &
tar xJf .dev/bundle19.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p $B/old /tmp/new && cp $P/*.so $B/old/ && tar xJf .dev/vk19/gpu/new.tar.xz -C /tmp/new
cp /tmp/new/libtessera_backend_vulkan.so $P/libtessera_backend_vulkan.so
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
md5sum $NEW $OLD | cut -c1-12
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
V=TESSERA_VULKAN_
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; sys) echo ${V}RING_VRAM=0;; *) echo TESSERA_NOTHING=1;; esac; }

echo "=== suites (new plugin, defaults) t=$(el)"
TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 \
  --gtest_filter='-*Coop*' > $L/vk_unit.log 2>&1; echo "unit rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/vk_unit.log | head -6
TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1; echo "conformance rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_conf.log | head -4
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
  timeout 50 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1; echo "golden rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_golden.log | head -4

# Lab: the decode GEMV shapes (8B, 1B) with their fusions; old dumps, new / sys check the bits.
lab() { local tag=$1 a=$2; local so=$NEW; [ $tag = old ] && so=$OLD
  env $(venv $tag) TESSERA_VULKAN_PLUGIN=$so timeout 40 /tmp/new/vulkan_gemv_lab \
    --reps 100 --glu --rope --shapes 8b,1b $a > $L/lab_$tag.log 2>&1
  echo "--- lab $tag rc=$? t=$(el)"
  grep -E "us/dispatch|same bits" $L/lab_$tag.log |
    sed -E 's/ +[0-9]+ dispatches +([0-9.]+) us\/dispatch +[0-9.]+ GB\/s +([0-9.]+) of copy.*/ \1 us \2/' | cut -c1-100; }
echo "=== lab t=$(el)"
lab old "--dump /tmp/old.bin"; lab new "--check /tmp/old.bin"; lab sys "--check /tmp/old.bin"

PROMPT="The capital of France is a city that has many old buildings and"
eb() { local v=$1; shift; env $(venv $v) timeout 60 $B/bin/engine bench "$@" 2>&1 | grep -E "\| tg[0-9]|rror" | sed 's/^/    /'; }
md5run() { local s=$1 v=$2
  env $(venv $v) timeout 45 $B/bin/engine run /tmp/$s "$PROMPT" --raw -n 16 --temperature 0 --backend vulkan > $L/run_${s}_$v.txt 2> $L/run_${s}_$v.err
  echo "  $s $v rc=$? $(md5sum < $L/run_${s}_$v.txt | cut -c1-12)"; }
# prof TAG VARIANT NTOK [ENV...]: 8B decode, PROFILE=1, prompt of NTOK tokens, 32 new tokens.
prof() { local tag=$1 v=$2 n=$3; shift 3
  local pr=$(python3 -c "print(' '.join('t%d' % (i % 5000 + 1) for i in range($n)))")
  env $(venv $v) "$@" TESSERA_VULKAN_PROFILE=1 ${V}L2_WARM=0 timeout 40 $B/bin/engine run /tmp/llama-3.1-8b "$pr" \
    --raw -n 32 --temperature 0 --backend vulkan > $L/prof_$tag.txt 2> $L/prof_$tag.log
  echo "=== 8B PROFILE=1 $tag ($v, $n prompt tokens + 32, $*) rc=$? t=$(el)"
  grep -E "parameter ring|profile:|calls" $L/prof_$tag.log | grep -vE " (conv|convert|quant|coop)" | sed 's/^.*\] //' | head -16; }

s=llama-3.2-1b
while [ ! -f /tmp/$s.done ]; do sleep 1; done
echo "=== $s ready t=$(el)"
md5run $s new
echo "    (HEAD's 1B md5 in earlier sessions: f58a3f1c1c17)"
for v in old new new old; do
  left || break; echo "=== $s vulkan tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
done
s=llama-3.1-8b
while [ ! -f /tmp/$s.done ]; do sleep 1; done
echo "=== $s ready t=$(el)"
md5run $s new
echo "    (HEAD's 8B md5 in earlier sessions: 2e8612e993ee)"
for v in old new new old; do
  left || break; echo "=== $s vulkan tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
done
left && { echo "=== $s cuda tg128 (HEAD's plugin) t=$(el)"; eb old /tmp/$s --backend cuda -p 16 -n 128 -r 2; }
left && prof sys140 sys 140
left && prof new140 new 140
left && prof empty140 sys 140 ${V}LAB_EMPTY=3
left && prof sys1024 sys 1024
left && prof sys8 sys 8
left && prof emptynew140 new 140 ${V}LAB_EMPTY=3
left && md5run llama-3.1-8b old
left && md5run llama-3.2-1b old
echo "total $(el) s"
