#!/bin/bash
# vk-l2 (twelfth session): the L2 warm-up (l2_warm.comp, TESSERA_VULKAN_L2_WARM) on the H100.
# From the repo root, carrying .dev/vk-l2/bundle.tar.gz (bash ci/bundle.sh <build>
# .dev/vk-l2/bundle + stripped vulkan_backend_test, op_conformance_test, text_golden_test in
# bin/, HEAD's Vulkan plugin in old/; call 2 also vulkan_gemv_lab) and .gl (glvnd debs). Suites
# with the warm forced on after every kind of dispatch and for any size (L2_WARM=15, _MIN_MB=0;
# call 1 ran "7", which then meant the same: the code had no bit 8 and no minimum), greedy
# `engine run` bytes with it off / default / forced, then
# engine tg128 interleaved A B C B A per shape: A = new (the default), B = new with
# TESSERA_VULKAN_L2_WARM=0 (the tree's code with the warm skipped), C = HEAD's plugin; CUDA on
# 8B for the ratio; per-dispatch profiles (TESSERA_VULKAN_PROFILE=1: o's GEMV, "matmul.comp
# decode", with and without the warm before it); one run of each other setting (MASKS, _MB,
# _GROUPS). PHASE=2: call 2 (below); PHASE=3: suites only. Steps stop starting past $DEADLINE s.
# Logs in $OUT (logs.tgz: every run's log).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-180}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
tar xzf .dev/vk-l2/bundle.tar.gz -C .dev/vk-l2
B=$PWD/.dev/vk-l2/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
MODELS=${MODELS:-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}
for s in $MODELS; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done) &
done
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" ||
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices -v 2>&1 | grep -A1 "^vulkan" | head -3
mkdir -p $B/oldp && cp $B/old/libtessera_backend_vulkan.so $P/libtessera_backend_cpu.so $B/oldp/
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
L=/tmp/logs; mkdir -p $L
[ "${PHASE:-1}" = 2 ] && SUITES=0
if [ "${SUITES:-1}" = 1 ]; then
echo "=== suites, TESSERA_VULKAN_L2_WARM=15, no minimum size"
export TESSERA_VULKAN_L2_WARM=15 TESSERA_VULKAN_L2_WARM_MIN_MB=0
timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter="${UNIT_FILTER:--*Coop*}" \
  > $OUT/unit.log 2>&1; echo "unit rc=$? t=$(( $(date +%s) - T0 ))"
grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $OUT/unit.log | head -6
TESSERA_CONFORMANCE_PLUGINS=$TESSERA_VULKAN_PLUGIN timeout 40 $B/bin/op_conformance_test \
  --gtest_brief=1 > $OUT/conf.log 2>&1; echo "conformance rc=$? t=$(( $(date +%s) - T0 ))"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $OUT/conf.log | head -4
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan \
  TESSERA_TEST_PLUGINS=$TESSERA_VULKAN_PLUGIN:$P/libtessera_backend_cpu.so \
  timeout 40 $B/bin/text_golden_test --gtest_brief=1 > $OUT/golden.log 2>&1
echo "golden rc=$? t=$(( $(date +%s) - T0 ))"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $OUT/golden.log | head -4
unset TESSERA_VULKAN_L2_WARM TESSERA_VULKAN_L2_WARM_MIN_MB
fi
[ "${PHASE:-1}" = 3 ] && exit 0  # call 3: the final build's suites only (MODELS="")
# eb NAME CKPT [ENV...]: tg128 on the new plugin (old: HEAD's, via TESSERA_BACKEND_PATH).
eb() {
  local name=$1 c=$2; shift 2
  while [ ! -f /tmp/$c.done ]; do sleep 1; done
  left || { echo "skip $name"; return; }
  env "$@" timeout 40 $B/bin/engine bench /tmp/$c --backend ${BK:-vulkan} -p ${PP:-16} \
    -n ${NN:-128} -r ${RR:-2} > $L/$c.$name.log 2>&1
  echo "$c $name: $(grep -E "tg[0-9]+ |rror" $L/$c.$name.log | head -2 | tr -s ' ' |
    tr '\n' ' ') t=$(( $(date +%s) - T0 ))"
}
OLD="TESSERA_BACKEND_PATH=$B/oldp"
greedy() {  # greedy tokens with the warm off, default and after everything: same bytes
  local c=$1 w; while [ ! -f /tmp/$c.done ]; do sleep 1; done
  for w in 0 def 15; do
    ( [ $w != def ] && export TESSERA_VULKAN_L2_WARM=$w TESSERA_VULKAN_L2_WARM_MIN_MB=0
      timeout 30 $B/bin/engine run /tmp/$c --backend vulkan --raw --temperature 0 -n 64 \
        "t1 t7 t42 t9 t300 t12" > $L/$c.run$w.txt 2> /dev/null )
  done
  cmp $L/$c.run0.txt $L/$c.rundef.txt && cmp $L/$c.run0.txt $L/$c.run15.txt &&
    echo "$c greedy: same bytes off/default/15 ($(wc -c < $L/$c.run0.txt) bytes)"
}
prof() {  # o's GEMV (matmul.comp decode) and the warm, serialized by the timestamps
  local c=$1 w; shift
  for w in "$@"; do
    TESSERA_VULKAN_PROFILE=1 PP=128 NN=32 RR=1 eb prof$w $c TESSERA_VULKAN_L2_WARM=$w > /dev/null
    grep -E "l2_warm|decode \(|attention.comp|skew \(" $L/$c.prof$w.log |
      sed "s/^/  $c prof L2_WARM=$w /"
  done
}
ab() {  # A B C B A on shape $1 (C: HEAD's plugin; B = the same code with the warm skipped);
  local c=$1 v  # CUDA (BK=cuda) in the middle when $2 = cuda
  for v in A B C X B A; do
    case $v in
      A) eb new $c ;; B) eb off $c TESSERA_VULKAN_L2_WARM=0 ;; C) eb old $c $OLD ;;
      X) [ "${2:-}" = cuda ] && BK=cuda eb cuda $c ;;
    esac
  done
}
if [ "${PHASE:-1}" = 2 ]; then
  # Call 2: is o (or any decode GEMV) faster with its weights in L2? The lab with 2 weight
  # copies (--l2-mb 1: 1B / 0.5B shapes stay in L2) against 256 MiB of copies (never in L2);
  # then the settings call 1 left open, interleaved with the warm off.
  for l2 in 256 1 256 1; do
    echo "=== vulkan_gemv_lab --l2-mb $l2"
    timeout 30 $B/bin/vulkan_gemv_lab --shapes 1b,05b,8b --reps 100 --l2-mb $l2 2>&1 |
      grep -E "dispatch|PASSED|FAIL" | cut -c1-120
  done
  for v in off m9 off m9; do
    case $v in
      off) eb off qwen2.5-0.5b TESSERA_VULKAN_L2_WARM=0 ;;
      m9) eb m9 qwen2.5-0.5b TESSERA_VULKAN_L2_WARM=9 TESSERA_VULKAN_L2_WARM_MB=20 ;;
    esac
  done
  for v in a20 off m9 a20 off m9; do
    case $v in
      off) eb off llama-3.1-8b TESSERA_VULKAN_L2_WARM=0 ;;
      a20) eb a20 llama-3.1-8b TESSERA_VULKAN_L2_WARM=1 TESSERA_VULKAN_L2_WARM_MB=20 ;;
      m9) eb m9 llama-3.1-8b TESSERA_VULKAN_L2_WARM=9 TESSERA_VULKAN_L2_WARM_MB=20 ;;
    esac
  done
  tar czf $OUT/logs.tgz -C /tmp logs
  echo "total $(( $(date +%s) - T0 )) s"
  exit 0
fi
for c in $MODELS; do
  [ $c = llama-3.2-1b ] && greedy $c
  if [ $c = llama-3.1-8b ]; then ab $c cuda; else ab $c; fi
  [ $c = llama-3.1-8b ] && prof $c 1 0
  [ $c = llama-3.1-8b ] && eb mb20 $c TESSERA_VULKAN_L2_WARM_MB=20
  for m in ${MASKS:-7 3}; do eb m$m $c TESSERA_VULKAN_L2_WARM=$m; done
  [ $c = llama-3.2-1b ] && prof $c 1 0
done
eb g128 llama-3.1-8b TESSERA_VULKAN_L2_WARM_GROUPS=128
tar czf $OUT/logs.tgz -C /tmp logs
echo "total $(( $(date +%s) - T0 )) s"
