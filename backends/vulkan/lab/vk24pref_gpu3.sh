#!/bin/bash
# vk24-pref candidate check (NOT RUN by vk24-pref: its allowance was two calls). The candidate
# (results/vk24pref/pref_o_down_not_measured.diff, applies at HEAD f693230) puts the plain skewed
# decode GEMVs of at most 2 workgroups an SM (8B o and down, 1B down, 0.5B down) on the
# decode_skew_pref twin with PREF_MODE 10 by default on the HBM class with >= 100 GiB (the H200;
# TESSERA_VULKAN_DECODE_PREF=0 = off). Carries $BUNDLE (HEAD's bundle: old = its plugin), $CANDTAR
# (cand/: the candidate's stripped vulkan plugin, vulkan_gemv_lab, vulkan_backend_test) and .gl.
#   1. lab 8b,1b,05b (--glu --rope): old dumps, cand (default) and cand PREF=0 check; us a dispatch
#   2. 8B: greedy md5 old / cand ("t1 t2 t3 t4" -n 32; HEAD cd6fcec7d66a); tg128 old cand cuda
#      cand old; 1B and 0.5B tg128 old cand cand old
#   3. the Vulkan suites on cand's defaults (vulkan_backend_test, op conformance, golden)
# No step starts past $DEADLINE s; logs in $OUT/logs3.tgz. Expected ~135 s on a warm machine
# (~70 s more cold); SMALL=0 skips the 1B / 0.5B benches (~30 s less).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vk24pref3; rm -rf $L; mkdir -p $L
trap 'tar czf $OUT/logs3.tgz -C /tmp vk24pref3' EXIT
T0=$(date +%s); DEADLINE=${DEADLINE:-140}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
BUNDLE=${BUNDLE:-.dev/bundle24.tar.xz}; CANDTAR=${CANDTAR:-.dev/vk24-pref/cand.tar.xz}
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do rm -f /tmp/$s.done; done
(for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done
done) &
tar xJf $BUNDLE -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; NB=/tmp/nb
rm -rf $NB && cp -r $B $NB
D=$(dirname $CANDTAR); tar xJf $CANDTAR -C $D
cp $D/cand/libtessera_backend_vulkan.so $NB/lib/tessera/backends/; cp $D/cand/vulkan_* $NB/bin/
OLD=$P/libtessera_backend_vulkan.so NEW=$NB/lib/tessera/backends/libtessera_backend_vulkan.so
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$NB/bin/engine devices 2>&1 | grep -E "vulkan:0|cuda:0"
V=TESSERA_VULKAN_
lab() { local tag=$1 so=$2 a=$3; shift 3
  env "$@" ${V}PIPELINE_STATS=1 TESSERA_VULKAN_PLUGIN=$so timeout 40 $NB/bin/vulkan_gemv_lab \
    --reps 100 --glu --rope --shapes 8b,1b,05b --copy-gbs 4230 $a > $L/lab_$tag.log 2>&1
  echo "--- $tag ($*) rc=$? t=$(el)"
  grep -E "us/dispatch|same bits" $L/lab_$tag.log |
    sed -E 's/ +[0-9]+ dispatches +([0-9.]+) us\/dispatch +[0-9.]+ GB\/s +([0-9.]+) of copy.*; (.*)\)$/ \1 us \2 [\3]/' | cut -c1-110; }
echo "=== lab t=$(el)"
lab old $OLD "--dump /tmp/old.bin" X=1
lab cand $NEW "--check /tmp/old.bin" X=1
lab cand0 $NEW "--check /tmp/old.bin" ${V}DECODE_PREF=0
grep "pipeline stats matmul.comp skew" $L/lab_cand.log | sort -u | sed -E 's/.*stats (matmul[^[]*).*(Register Count=[0-9]+).*/    \1 \2/'
tg() { cat $L/tg_$1_*.log 2>/dev/null | grep "| tg128" | awk '{s += $4; n++} END {if (n) printf "%.2f", s / n; else print 0}'; }
NI=0
eb() { local side=$1 S=$2 bd=$NB; NI=$((NI + 1)); [ $side = old ] && bd=$B
  echo "--- $S $side t=$(el)"
  if [ $side = cuda ]; then LD_LIBRARY_PATH=$B/lib timeout 60 $B/bin/engine bench /tmp/$S --backend cuda -p 16 -n 128 -r 2 2>&1
  else LD_LIBRARY_PATH=$bd/lib timeout 60 $bd/bin/engine bench /tmp/$S --backend vulkan -p 16 -n 128 -r 2 2>&1; fi |
    grep -E "\| (pp|tg)[0-9]|rror" > $L/tg_${S}_${side}_$NI.log; sed "s/^/    /" $L/tg_${S}_${side}_$NI.log; }
S=llama-3.1-8b
while [ ! -f /tmp/$S.done ] && [ $(el) -lt 90 ]; do sleep 1; done
echo "=== engine 8B t=$(el)"
for side in old cand; do bd=$NB; [ $side = old ] && bd=$B
  LD_LIBRARY_PATH=$bd/lib timeout 45 $bd/bin/engine run /tmp/$S "t1 t2 t3 t4" --raw -n 32 --temperature 0 --backend vulkan > $L/run_$side.txt 2> $L/run_$side.err
  echo "  $side run rc=$? md5 $(md5sum < $L/run_$side.txt | cut -c1-12) (HEAD: cd6fcec7d66a)"
done
for side in old cand cuda cand old; do left && eb $side $S; done
echo "8B tg128 means: old $(tg ${S}_old) cand $(tg ${S}_cand)"
for S in llama-3.2-1b qwen2.5-0.5b; do
  [ "${SMALL:-1}" = 1 ] && [ -f /tmp/$S.done ] || continue
  for side in old cand cand old; do [ $(el) -lt $((DEADLINE - 30)) ] && eb $side $S; done
  echo "$S tg128 means: old $(tg ${S}_old) cand $(tg ${S}_cand)"
done
echo "=== suites (cand, defaults) t=$(el)"
if left; then
  TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $NB/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter='-*Coop*' > $L/vk_unit.log 2>&1
  echo "unit rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]' $L/vk_unit.log | tr '\n' ' ')"
  TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1
  echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $L/vk_conf.log | tr '\n' ' ')"
  TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
    timeout 50 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1
  echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $L/vk_golden.log | tr '\n' ' ')"
fi
echo "total $(el) s"
