#!/bin/bash
# vk20-idle (twentieth session): the Vulkan plugin's host_alloc (ABI 1.2) and downloads straight
# into it (the logits: no staging memcpy; the eager copy goes straight into the engine's buffer
# once the prediction holds for it). One call on the H100 from the repo root, carrying
# .dev/bundle20.tar.xz (HEAD d0b80cb's bundle: engine, plugins, suites), .dev/old20v.tar.xz
# (HEAD's engine + Vulkan plugin = old), .dev/vk20-idle/gpu.tar.xz (new: this plugin +
# vulkan_backend_test, stripped) and .gl: `bash backends/vulkan/lab/vk20idle_gpu.sh`.
# (1) suites on the new plugin; (2) per model (1B, 8B): md5 old / new (greedy; sampled, seed 7:
# the logits path), step profile
# (TESSERA_VULKAN_PROFILE=2: download / sync medians, GPU idle) old / new, engine bench tg128
# old new new old new old; CUDA 8B tg128 once; (3) 8B tg128 with TESSERA_VULKAN_FIRST_SUBMIT=1.
# Logs in $OUT. Call 1 (H100, 191 s): results/vk20idle/call1/ (console.log: every number); call 2
# (the same warm machine, 52 s: 8B new / FIRST_SUBMIT=1 pairs): results/vk20idle/call2_console.log.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vk20idle; mkdir -p $L
trap 'cp $L/console.log $OUT/ 2>/dev/null; tar czf $OUT/logs.tgz -C /tmp vk20idle' EXIT
exec > >(tee $L/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-190}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in llama-3.2-1b llama-3.1-8b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle20.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p $B/old /tmp/new && tar xJf .dev/old20v.tar.xz -C $B/old && tar xJf .dev/vk20-idle/gpu.tar.xz -C /tmp/new
cp $P/libtessera_backend_cpu.so $B/old/
cp /tmp/new/libtessera_backend_vulkan.so $P/libtessera_backend_vulkan.so
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
md5sum $NEW $OLD | cut -c1-12
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; fs1) echo TESSERA_VULKAN_FIRST_SUBMIT=1;; *) echo TESSERA_NOTHING=1;; esac; }

echo "=== suites (new plugin) t=$(el)"
TESSERA_VULKAN_PLUGIN=$NEW timeout 40 /tmp/new/vulkan_backend_test --gtest_brief=1 \
  --gtest_filter='-*Coop*' > $L/vk_unit.log 2>&1; echo "unit rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/vk_unit.log | head -6
TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1; echo "conformance rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_conf.log | head -4
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
  timeout 50 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1; echo "golden rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_golden.log | head -4

PROMPT="The capital of France is a city that has many old buildings and"
eb() { local v=$1; shift; env $(venv $v) timeout 60 $B/bin/engine bench "$@" 2>&1 | grep -E "\| tg[0-9]|rror" | sed 's/^/    /'; }
md5run() { local s=$1 v=$2
  env $(venv $v) timeout 45 $B/bin/engine run /tmp/$s "$PROMPT" --raw -n 16 --temperature 0 --backend vulkan > $L/run_${s}_$v.txt 2> $L/run_${s}_$v.err
  echo "  $s $v rc=$? $(md5sum < $L/run_${s}_$v.txt | cut -c1-12)"; }
# sampled: the logits path (ForwardLogits into host_alloc memory), temperature 0.8, seed 7.
md5samp() { local s=$1 v=$2
  env $(venv $v) timeout 45 $B/bin/engine run /tmp/$s "$PROMPT" --raw -n 24 --temperature 0.8 --seed 7 --backend vulkan > $L/samp_${s}_$v.txt 2> $L/samp_${s}_$v.err
  echo "  $s sampled $v rc=$? $(md5sum < $L/samp_${s}_$v.txt | cut -c1-12)"; }
# prof MODEL VARIANT: engine bench -p 16 -n 32 -r 1 with the step profile.
prof() { local s=$1 v=$2
  env $(venv $v) TESSERA_VULKAN_PROFILE=2 timeout 45 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 32 -r 1 \
    > $L/prof_${s}_$v.txt 2> $L/prof_${s}_$v.log
  echo "=== $s PROFILE=2 $v rc=$? t=$(el)"
  grep -hE "step medians|\| tg" $L/prof_${s}_$v.txt $L/prof_${s}_$v.log | sed 's/^.*\] //' | head -4; }

for s in llama-3.2-1b llama-3.1-8b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  echo "=== $s ready t=$(el)"
  left && md5run $s old; left && md5run $s new
  left && md5samp $s old; left && md5samp $s new
  for v in old new new old new old; do
    left || break; echo "=== $s vulkan tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
  done
  left && prof $s new; left && prof $s old
done
echo "=== CUDA 8B tg128 t=$(el)"
left && eb new /tmp/llama-3.1-8b --backend cuda -p 16 -n 128 -r 2
# (3) if time is left: the first submission after 1 dispatch instead of 2 (8B).
for v in fs1 new fs1 new; do
  left || break; echo "=== llama-3.1-8b vulkan tg128 $v t=$(el)"; eb $v /tmp/llama-3.1-8b --backend vulkan -p 16 -n 128 -r 2
done
left && prof llama-3.1-8b fs1
echo "total $(el) s"
