#!/bin/bash
# vk-fuse14b (fourteenth session): results/fuse14_kv_epilogue_not_kept.diff (the k RoPE + k/v
# cache KV_WRITEs in the norm-fused q/k/v dispatch's epilogue) plus (1) the k / v parts'
# workgroups first in the grid (matmul.comp main, PAIRED=2) and (2) the epilogue's position, slot
# and frequency loads issued before the row loop (through shared memory), on the H100, in ONE
# call from the repo root, carrying .dev/vk-fuse14b/bundle.tar.gz (engine, core, CPU plugin,
# op_conformance_test, text_golden_test of vk-fuse14's bundle; the Vulkan plugin and
# vulkan_backend_test built from this tree), .dev/old14.tar.xz (HEAD 035ab10's stripped plugins:
# old/, also the CUDA one) and .gl (glvnd).
# 1. suites with the new plugin: vulkan_backend_test (Decode/Epilogue/RopeKv), op conformance,
#    golden (while the checkpoints are made);
# 2. per shape (8B, 1B, 0.5B): `engine run CKPT PROMPT --raw -n 16 --temperature 0` new vs old,
#    byte-compared; tg128 (`engine bench -p 16 -n 128 -r 3`) new / off (knob
#    TESSERA_VULKAN_FUSE_KV_EPILOGUE=0) / old interleaved, 8B two rounds; on 8B also CUDA (HEAD's
#    plugin) once and TESSERA_VULKAN_PROFILE=1 per-shader times (tg32) new vs off, with the
#    driver's pipeline statistics (registers).
# Steps stop starting past $DEADLINE s. README, vk-fuse14b section. Not kept: build the bundle
# from a tree with results/fuse14b_kv_epilogue_kv_first_not_kept.diff applied (without it the
# knob does nothing and new = off = old).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/fuse14blogs; mkdir -p $L  # every log, tarred into $OUT/logs.tgz
trap 'tar czf $OUT/logs.tgz -C /tmp fuse14blogs' EXIT
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
SHAPES="llama-3.1-8b llama-3.2-1b qwen2.5-0.5b"
for s in $SHAPES; do rm -f /tmp/$s.done; done
(for s in $SHAPES; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done; done) &
mkdir -p .dev/vk-fuse14b; tar xzf .dev/vk-fuse14b/bundle.tar.gz -C .dev/vk-fuse14b
B=$PWD/.dev/vk-fuse14b/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p $B/old && tar xJf .dev/old14.tar.xz -C $B/old
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
NEW=$P/libtessera_backend_vulkan.so
echo "=== suites (new plugin)"
TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter='*Decode*:*Epilogue*:*RopeKv*' > $L/vk_unit.log 2>&1; echo "unit rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/vk_unit.log | head -8
TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1; echo "conformance rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_conf.log | head -4
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
  timeout 50 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1; echo "golden rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_golden.log | head -4
echo "  t=$(( $(date +%s) - T0 )) s"
# v = new | off (knob 0) | old (HEAD's plugins, searched first through TESSERA_BACKEND_PATH).
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; off) echo TESSERA_VULKAN_FUSE_KV_EPILOGUE=0;; *) echo TESSERA_NOTHING=1;; esac; }
PROMPT="The capital of France is a city that has many old buildings and"
eb() { local v=$1; shift; env $(venv $v) timeout 60 $B/bin/engine bench "$@" 2>&1 | grep -E "\| tg[0-9]|rror" | sed 's/^/    /'; }
for s in $SHAPES; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  echo "=== $s run -n 16 (byte compare)"
  for v in new old; do
    env $(venv $v) timeout 45 $B/bin/engine run /tmp/$s "$PROMPT" --raw -n 16 --temperature 0 --backend vulkan > $L/run_${s}_$v.txt 2> $L/run_${s}_$v.err
    echo "  $v rc=$? $(md5sum < $L/run_${s}_$v.txt | cut -c1-12) $(head -c 80 $L/run_${s}_$v.txt | tr '\n' ' ')"
  done
  cmp -s $L/run_${s}_new.txt $L/run_${s}_old.txt && echo "  same bytes" || echo "  DIFFER"
  for r in 1 2; do
    [ $r = 2 ] && [ $s != llama-3.1-8b ] && break
    for v in new off old; do left || break; echo "=== $s vulkan tg128 $v r$r"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 3; done
  done
  if [ $s = llama-3.1-8b ]; then
    left && { echo "=== $s cuda tg128 (HEAD's plugin)"; eb old /tmp/$s --backend cuda -p 16 -n 128 -r 3; }
    for v in new off; do
      left || break
      echo "=== $s PROFILE=1 $v (tg32)"
      env $(venv $v) TESSERA_VULKAN_PROFILE=1 TESSERA_VULKAN_PIPELINE_STATS=1 timeout 40 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 32 -r 1 > $L/prof_$v.log 2>&1
      grep -E "calls|submissions|tg32" $L/prof_$v.log | sed 's/^/    /' | head -24
      grep "pipeline stats matmul.comp skew+norm+pair" $L/prof_$v.log | sed -E 's/.*stats (matmul[^[]*).*(Register Count=[0-9]+).*(Shared Memory Size=[0-9]+).*/    \1 \2 \3/' | sort -u
    done
  fi
  echo "  t=$(( $(date +%s) - T0 )) s"
done
echo "total $(( $(date +%s) - T0 )) s"
