#!/bin/bash
# vk-norm (twelfth session): the tail norm (TESSERA_VULKAN_TAIL_NORM; plugin.cc ExecuteTailNorm,
# matmul.comp TAIL_NORM) on the H100, one call from the repo root, carrying
# .dev/vk-norm/bundle.tar.gz (a bundle with the new Vulkan plugin, the stripped test binaries,
# this script, and old/ = HEAD's Vulkan plugin from .dev/old12) and .gl (glvnd debs).
# Order: checkpoints in the background; the Vulkan suites with the new plugin (defaults: tail
# norm on); greedy `engine run` bytes with the tail norm on / off (0.5B, 1B; 8B at the end);
# engine tg128 per model interleaved A B C C B A (A = new, B = new with
# TESSERA_VULKAN_TAIL_NORM=0, C = HEAD's plugin), -r 2; CUDA 8B once; 8B's per-module times with
# TESSERA_VULKAN_PROFILE=1, tail norm on / off. QUICK=1: 1B and 8B, A B B A, no HEAD or CUDA.
# Steps stop starting past $DEADLINE s. README, vk-norm section. The code it measured is not in
# the tree (results/tailnorm12/*_not_kept.diff: apply one, build, bundle as .dev/vk-norm/bundle);
# on the tree as it is, TESSERA_VULKAN_TAIL_NORM is ignored and "new" = "off".
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-200}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
D=.dev/vk-norm; tar xzf $D/bundle.tar.gz -C $D
B=$PWD/$D/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
(for s in $([ "${QUICK:-0}" = 1 ] || echo qwen2.5-0.5b) llama-3.2-1b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
(python3 bench/make_checkpoint.py --shape llama-3.1-8b --out /tmp/llama-3.1-8b > /dev/null 2>&1; touch /tmp/llama-3.1-8b.done) &
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
NEW=$P/libtessera_backend_vulkan.so
echo "=== suites (new plugin, defaults)"
env TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter=-*Coop* > $OUT/unit.log 2>&1
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $OUT/unit.log | head -6 | sed "s/^/  [unit] /"
env TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 2>&1 |
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST" | head -4 | sed "s/^/  [conformance] /"
env TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
  timeout 60 $B/bin/text_golden_test --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED) |FAILED TEST" | head -4 | sed "s/^/  [golden] /"
echo "suites done $(( $(date +%s) - T0 )) s"
greedy() {  # greedy bytes with the tail norm on / off
  local c=$1 t; while [ ! -f /tmp/$c.done ]; do sleep 1; done
  for t in 1 0; do
    TESSERA_VULKAN_TAIL_NORM=$t timeout 40 $B/bin/engine run /tmp/$c --backend vulkan --raw --temperature 0 -n 64 \
      "t1 t7 t42 t9 t300 t12" > $OUT/run_$c.$t.txt 2> /dev/null
  done
  cmp $OUT/run_$c.1.txt $OUT/run_$c.0.txt && echo "$c greedy: same bytes on/off ($(wc -c < $OUT/run_$c.1.txt) bytes)"
}
eb() {  # tag model [env...]
  local tag=$1 c=$2; shift 2
  left || { echo "skip $c $tag"; return; }
  env "$@" timeout 45 $B/bin/engine bench /tmp/$c --backend ${BK:-vulkan} -p 16 -n 128 -r 2 > $OUT/b.log 2>&1
  echo "$c $tag: $(grep -E "tg128 |rror" $OUT/b.log | head -2 | tr -s ' ' | tr '\n' ' ') t=$(( $(date +%s) - T0 ))"
}
A="TESSERA_VULKAN_TAIL_NORM=1" Bo="TESSERA_VULKAN_TAIL_NORM=0" C="TESSERA_BACKEND_PATH=$B/old"
# QUICK=1 (call 3): 1B and 8B only, new / off interleaved A B B A, no HEAD, no CUDA.
MODELS="qwen2.5-0.5b llama-3.2-1b llama-3.1-8b"; [ "${QUICK:-0}" = 1 ] && MODELS="llama-3.2-1b llama-3.1-8b"
for c in $MODELS; do
  [ $c != llama-3.1-8b ] && greedy $c
  while [ ! -f /tmp/$c.done ]; do sleep 1; done
  if [ "${QUICK:-0}" = 1 ]; then
    eb new $c $A; eb off $c $Bo; eb off $c $Bo; eb new $c $A
  else
    eb new $c $A; eb off $c $Bo; eb HEAD $c $C; eb HEAD $c $C; eb off $c $Bo; eb new $c $A
  fi
done
[ "${QUICK:-0}" = 1 ] || BK=cuda eb cuda llama-3.1-8b TESSERA_BACKEND_PATH=
prof() {  # the decode dispatches serialized by the timestamps (us a call per module)
  left || return; env "$@" TESSERA_VULKAN_PROFILE=1 timeout 45 $B/bin/engine bench /tmp/llama-3.1-8b --backend vulkan \
    -p 16 -n 32 -r 1 > $OUT/prof.log 2>&1
  grep -E "matmul.comp|backend profile" $OUT/prof.log | sed "s/^/  prof $* /"
}
prof $A; prof $Bo
left && greedy llama-3.1-8b
echo "total $(( $(date +%s) - T0 )) s"
