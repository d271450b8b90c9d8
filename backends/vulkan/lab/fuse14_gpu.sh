#!/bin/bash
# vk-fuse14 (fourteenth session): the k RoPE + k/v cache KV_WRITEs folded into the norm-fused
# q/k/v dispatch's epilogue (plugin.cc FuseRopeKvEpilogue, matmul.comp PairedGroup VEC_KV;
# TESSERA_VULKAN_FUSE_KV_EPILOGUE=0 = HEAD's separate RoPE + KV_WRITE dispatch), on the H100, in
# ONE call from the repo root, carrying .dev/vk-fuse14/bundle.tar.gz (engine, core, Vulkan plugin,
# vulkan_backend_test, op_conformance_test, text_golden_test built from this tree; HEAD's CPU and
# CUDA plugins from .dev/old14) and .dev/old14.tar.xz (HEAD 035ab10's stripped plugins: old/)
# and .gl (glvnd).
# 1. suites with the new plugin: vulkan_backend_test (coop tests filtered out), op conformance,
#    golden (while the checkpoints are made);
# 2. `engine run CKPT PROMPT --raw -n 16 --temperature 0`: new vs old vs knob off, byte-compared,
#    on each checkpoint;
# 3. tg128 (`engine bench -p 16 -n 128 -r 3`) new / off / old interleaved: 8B two rounds, 1B,
#    0.5B; CUDA 8B once (HEAD's plugin); TESSERA_VULKAN_PROFILE=1 8B per-shader times new vs old.
# ROUND=2 (call 2, the epilogue storing every part's rows from shared memory so the row loop
# carries no new state): the Decode/Epilogue/RopeKv unit tests and conformance, the byte
# compare new vs old, tg128 new / off / old (8B twice, 1B, 0.5B), the 8B per-shader profile of
# new with the driver's pipeline statistics (registers of the paired modules); no CUDA.
# Steps stop starting past $DEADLINE s. README, vk-fuse14 section. The fusion did not pay and is
# not in the tree: build the bundle from a tree with results/fuse14_kv_epilogue_not_kept.diff
# applied (without it the knob does nothing and new = off = old).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/fuse14logs; mkdir -p $L  # every log, tarred into $OUT/logs.tgz (few files come back)
trap 'tar czf $OUT/logs.tgz -C /tmp fuse14logs' EXIT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
SHAPES="llama-3.1-8b llama-3.2-1b qwen2.5-0.5b"
for s in $SHAPES; do rm -f /tmp/$s.done; done
(for s in $SHAPES; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done; done) &
mkdir -p .dev/vk-fuse14; tar xzf .dev/vk-fuse14/bundle.tar.gz -C .dev/vk-fuse14
B=$PWD/.dev/vk-fuse14/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p $B/old && tar xJf .dev/old14.tar.xz -C $B/old
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
NEW=$P/libtessera_backend_vulkan.so
R2=$([ "${ROUND:-1}" = 2 ] && echo 1 || echo 0)
echo "=== suites (new plugin)"
FILTER=-*Coop*; [ $R2 = 1 ] && FILTER='*Decode*:*Epilogue*:*RopeKv*:*Norm*:*Grouped*'
TESSERA_VULKAN_PLUGIN=$NEW timeout 90 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter=$FILTER > $L/vk_unit.log 2>&1; echo "unit rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/vk_unit.log | head -8
TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1; echo "conformance rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_conf.log | head -4
if [ $R2 = 0 ]; then
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
  timeout 60 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1; echo "golden rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_golden.log | head -4
fi
echo "  t=$(( $(date +%s) - T0 )) s"
# v = new | off (knob 0) | old (HEAD's plugin, searched first through TESSERA_BACKEND_PATH).
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; off) echo TESSERA_VULKAN_FUSE_KV_EPILOGUE=0;; *) echo TESSERA_NOTHING=1;; esac; }
PROMPT="The capital of France is a city that has many old buildings and"
eb() { local v=$1; shift; env $(venv $v) timeout 90 $B/bin/engine bench "$@" 2>&1 | grep -E "\| tg[0-9]|rror" | sed 's/^/    /'; }
for s in $SHAPES; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  echo "=== $s run -n 16 (byte compare)"
  for v in new old $([ $R2 = 0 ] && echo off); do
    env $(venv $v) timeout 60 $B/bin/engine run /tmp/$s "$PROMPT" --raw -n 16 --temperature 0 --backend vulkan > $L/run_${s}_$v.txt 2> $L/run_${s}_$v.err
    echo "  $v rc=$? $(md5sum < $L/run_${s}_$v.txt | cut -c1-12) $(head -c 80 $L/run_${s}_$v.txt | tr '\n' ' ')"
  done
  cmp -s $L/run_${s}_new.txt $L/run_${s}_old.txt && { [ $R2 = 1 ] || cmp -s $L/run_${s}_new.txt $L/run_${s}_off.txt; } && echo "  same bytes" || echo "  DIFFER"
  for r in 1 2; do
    left || break
    [ $r = 2 ] && [ $s != llama-3.1-8b ] && break
    for v in new off old; do echo "=== $s vulkan tg128 $v r$r"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r ${REPS:-3}; done
  done
  if [ $s = llama-3.1-8b ] && left; then
    [ $R2 = 0 ] && { echo "=== $s cuda tg128 (HEAD's plugin)"; eb new /tmp/$s --backend cuda -p 16 -n 128 -r ${REPS:-3}; }
    for v in new $([ $R2 = 0 ] && echo old); do
      left || break
      echo "=== $s PROFILE=1 $v (tg32)"
      env $(venv $v) TESSERA_VULKAN_PROFILE=1 TESSERA_VULKAN_PIPELINE_STATS=$R2 timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 32 -r 1 > $L/prof_$v.log 2>&1
      grep -E "calls|submissions|tg32" $L/prof_$v.log | sed 's/^/    /' | head -24
      grep "pipeline stats matmul.comp skew+norm+pair" $L/prof_$v.log | sort -u | sed -E 's/.*stats (matmul[^[]*).*(Register Count=[0-9]+).*/    \1 \2/' | sort -u
    done
  fi
  echo "  t=$(( $(date +%s) - T0 )) s"
done
echo "total $(( $(date +%s) - T0 )) s"
