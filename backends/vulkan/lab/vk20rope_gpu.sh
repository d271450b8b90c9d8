#!/bin/bash
# vk20-rope (twentieth session). The k RoPE + KV-write dispatch (rope.comp's KVF32 module
# rope_kv_f32: f32 caches, 32-bit index math, the slot loaded once a thread, no dtype switch;
# TESSERA_VULKAN_ROPE_FAST=0 = the generic module) and rows.comp's RMS_NORM / ARGMAX loops with
# 32-bit counters and stepped addresses; same bits.
# old = HEAD 656ac7b's plugin (build/perf), new = this tree's; engine = this tree's (both sides).
# (1) rows_check (lab/vk20rope_rows_check.cc: 132 RMS_NORM / ARGMAX cases) old / new, cmp;
# (2) suites on the new plugin; (3) 1B (while the 8B checkpoint is written): md5 old / new, tg128
# old new; 8B: greedy md5 with TESSERA_VULKAN_PROFILE=1 (per-dispatch us) old / new, tg128 old
# new new old.
# ONE call from the repo root carrying .dev/vk20-rope/gpu.tar.xz (bundle/ with old/ and the
# test binaries; this script) and .gl: `tar xJf .dev/vk20-rope/gpu.tar.xz -C /tmp &&
# bash /tmp/vk20rope_gpu.sh` (DEADLINE stops starting steps).
# History: call 1 (03:38 UTC, H100, 104 s of script; results/vk20rope/call1), then call 2 on the
# same warm machine (results/vk20rope/call2: the 8B profiles again and tg128 -r 3 old new x3).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vklogs; mkdir -p $L
trap 'tar czf $OUT/logs.tgz -C /tmp vklogs' EXIT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-175}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
(for s in llama-3.2-1b llama-3.1-8b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done; done) &
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
cp $P/libtessera_backend_cpu.so $B/old/
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
V=TESSERA_VULKAN_
md5sum $NEW $OLD | cut -c1-12
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan

# (1) rows.comp bits, old / new plugin.
for v in old new; do
  if [ $v = old ]; then PL=$OLD; else PL=$NEW; fi
  TESSERA_VULKAN_PLUGIN=$PL timeout 30 $B/bin/rows_check /tmp/rows_$v.bin > $L/rows_$v.log 2>&1
  echo "rows_check $v rc=$? $(tail -1 $L/rows_$v.log)"
done
cmp /tmp/rows_old.bin /tmp/rows_new.bin && echo "rows_check: old = new (same bits)"

# (2) Suites on the new plugin (defaults).
echo "=== suites (new plugin) t=$(el)"
TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 \
  --gtest_filter='-*Coop*' > $L/vk_unit.log 2>&1; echo "unit rc=$?"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/vk_unit.log | head -6
TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 40 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1; echo "conformance rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_conf.log | head -4
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
  timeout 40 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1; echo "golden rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_golden.log | head -4

# (3) Engine.
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; off) echo ${V}ROPE_FAST=0;; *) echo TESSERA_NOTHING=1;; esac; }
PROMPT="The capital of France is a city that has many old buildings and"
eb() { local v=$1; shift; env $(venv $v) timeout 45 $B/bin/engine bench "$@" 2>&1 | grep -E "\| (tg|pp)[0-9]|rror" | sed 's/^/    /'; }
md5run() { local s=$1 v=$2 n=$3; shift 3
  env $(venv $v) "$@" timeout 45 $B/bin/engine run /tmp/$s "$PROMPT" --raw -n $n --temperature 0 --backend vulkan > $L/run_${s}_$v.txt 2> $L/run_${s}_$v.err
  echo "  $s $v rc=$? $(md5sum < $L/run_${s}_$v.txt | cut -c1-12)"; }
prof() { grep -E "profile:|calls" $L/run_$1_$2.err | grep -E "profile|rope|rows|get_rows|elementwise|attention" | sed 's/^.*\] //' | head -10; }
wait_ckpt() { while [ ! -f /tmp/$1.done ] && left; do sleep 1; done; echo "=== $1 ready t=$(el)"; }
s=llama-3.2-1b; wait_ckpt $s
for v in old new; do left && md5run $s $v 16; done
for v in old new; do
  left || break; echo "=== $s vulkan tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
done
s=llama-3.1-8b; wait_ckpt $s
for v in old new; do left && { md5run $s $v 32 ${V}PROFILE=1; prof $s $v; }; done
for v in old new new old; do
  left || break; echo "=== $s vulkan tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
done
echo "total $(el) s"
