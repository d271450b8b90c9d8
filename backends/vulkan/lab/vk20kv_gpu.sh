#!/bin/bash
# vk20-kv (twentieth session). The k RoPE + k/v cache writes folded into the norm-fused q/k/v
# dispatch's epilogue (vk-fuse14 / fuse14b's patch ported to the persistent norm-fused groups),
# measured again now that the parameter ring is in host-visible VRAM (vk19). new = this plugin
# (TESSERA_VULKAN_FUSE_KV_EPILOGUE on), off = the same plugin with it =0 (HEAD's dispatches),
# old = HEAD d0b80cb's plugin (bundle20). On the H100, ONE call from the repo root, carrying
# .dev/bundle20.tar.xz (HEAD's bundle), .dev/vk20-kv/gpu (new.tar.xz: the new Vulkan plugin and
# vulkan_backend_test, stripped; a copy of this script) and .gl (glvnd):
# `bash .dev/vk20-kv/gpu/vk20kv_gpu.sh`. Steps: the suites on the new plugin, the pipeline
# statistics of the new module, greedy md5 old / new / off on 8B and 1B, engine tg128 old new
# new old on 8B and 1B (0.5B new old), CUDA 8B tg128 once, an 8B profile (per-dispatch us)
# new / old, then more rounds while time is left. The plugin it measured is
# results/vk20kv_kv_epilogue_not_kept.diff applied to d0b80cb (not in the tree); call 1's record
# (03:11 UTC, 167 s): results/vk20kv/call1/ (README, vk20-kv section).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vk20kvlogs; mkdir -p $L
trap 'cp $L/console.log $OUT/ 2>/dev/null; tar czf $OUT/logs.tgz -C /tmp vk20kvlogs' EXIT
exec > >(tee $L/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-225}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
G=${G:-.dev/vk20-kv/gpu}
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do rm -f /tmp/$s.done; done
(python3 bench/make_checkpoint.py --shape llama-3.1-8b --out /tmp/llama-3.1-8b > /tmp/8b.ckpt.log 2>&1; touch /tmp/llama-3.1-8b.done) &
(for s in llama-3.2-1b qwen2.5-0.5b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done; done) &
tar xJf .dev/bundle20.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p $B/old /tmp/new && cp $P/*.so $B/old/ && tar xJf $G/new.tar.xz -C /tmp/new
cp /tmp/new/libtessera_backend_vulkan.so $P/libtessera_backend_vulkan.so
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
md5sum $NEW $OLD | cut -c1-12
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
V=TESSERA_VULKAN_
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; off) echo ${V}FUSE_KV_EPILOGUE=0;; *) echo TESSERA_NOTHING=1;; esac; }
wait_ckpt() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 200 ]; do sleep 1; i=$((i + 1)); done; echo "=== $1 ready t=$(el)"; }

echo "=== suites (new plugin, defaults) t=$(el)"
TESSERA_VULKAN_PLUGIN=$NEW timeout 90 /tmp/new/vulkan_backend_test --gtest_brief=1 \
  --gtest_filter='-*Coop*' > $L/vk_unit.log 2>&1; echo "unit rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure|RopeKv" $L/vk_unit.log | head -8
TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1; echo "conformance rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_conf.log | head -4
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
  timeout 50 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1; echo "golden rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_golden.log | head -4

PROMPT="The capital of France is a city that has many old buildings and"
eb() { local v=$1; shift; env $(venv $v) timeout 60 $B/bin/engine bench "$@" 2>&1 | grep -E "\| tg[0-9]|rror" | sed 's/^/    /'; }
md5run() { local s=$1 v=$2; shift 2
  env $(venv $v) "$@" timeout 45 $B/bin/engine run /tmp/$s "$PROMPT" --raw -n 16 --temperature 0 --backend vulkan > $L/run_${s}_$v.txt 2> $L/run_${s}_$v.err
  echo "  $s $v rc=$? $(md5sum < $L/run_${s}_$v.txt | cut -c1-12)"; }
# prof TAG VARIANT SHAPE NTOK: decode with PROFILE=1, a prompt of NTOK tokens, 32 new tokens.
prof() { local tag=$1 v=$2 s=$3 n=$4
  local pr=$(python3 -c "print(' '.join('t%d' % (i % 5000 + 1) for i in range($n)))")
  env $(venv $v) TESSERA_VULKAN_PROFILE=1 timeout 40 $B/bin/engine run /tmp/$s "$pr" \
    --raw -n 32 --temperature 0 --backend vulkan > $L/prof_$tag.txt 2> $L/prof_$tag.log
  echo "=== $s PROFILE=1 $tag ($v, $n prompt tokens + 32) rc=$? t=$(el)"
  grep -E "parameter ring|profile:|calls" $L/prof_$tag.log | grep -vE " (conv|convert|quant|coop)" | sed 's/^.*\] //' | head -16; }

s=llama-3.2-1b; wait_ckpt $s
for v in new off old; do md5run $s $v; done
echo "    (HEAD's 1B md5 in earlier sessions: f58a3f1c1c17)"
s=llama-3.1-8b; wait_ckpt $s
md5run $s new ${V}PIPELINE_STATS=1
grep -iE "skew\+norm\+pair" $L/run_${s}_new.err | sed 's/^.*\] //' | head -6
for v in off old; do md5run $s $v; done
echo "    (HEAD's 8B md5 in earlier sessions: 2e8612e993ee)"
wait_ckpt qwen2.5-0.5b
for v in old new new old; do
  left || break; echo "=== $s vulkan tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
done
left && { echo "=== $s cuda tg128 (HEAD's plugin) t=$(el)"; eb old /tmp/$s --backend cuda -p 16 -n 128 -r 2; }
s=llama-3.2-1b
for v in old new new old; do
  left || break; echo "=== $s vulkan tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
done
s=qwen2.5-0.5b
for v in new old; do
  left || break; echo "=== $s vulkan tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
done
left && prof new140 new llama-3.1-8b 140
left && prof old140 old llama-3.1-8b 140
s=llama-3.1-8b
for v in off new; do
  left || break; echo "=== $s vulkan tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
done
s=llama-3.2-1b
for v in off new; do
  left || break; echo "=== $s vulkan tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
done
left && prof new1b new llama-3.2-1b 140
left && prof off1b off llama-3.2-1b 140
echo "total $(el) s"
