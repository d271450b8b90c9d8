#!/bin/bash
# vk24-qkv (twenty-fourth session; run in the twenty-fifth by lab/lead25a_gpu.sh: every mode lost, README). Measures the skew+norm+pair
# modules' PREF twin (results/vk24qkv/pair_pref_not_measured.diff, applies at HEAD 9e7e11b;
# matmul.comp PREF_MODE 32 EARLY, 64 CROSS, 128 XSHARED; TESSERA_VULKAN_DECODE_PREF_PAIR=M, off
# by default) on the H200's 8B q/k/v + RoPE and gate/up + SWIGLU dispatches, and in the engine.
# Carries $BUNDLE (the session's bundle: old = its plugin, engine, op_conformance_test,
# text_golden_test), $NEWTAR (new/: the diff's stripped vulkan plugin, vulkan_gemv_lab,
# vulkan_backend_test; .dev/vk24-qkv/new.tar.xz) and .gl. Run it as .dev/vk24-qkv/run.sh (= this
# file) when the diff is not applied:
#   run(command="bash .dev/vk24-qkv/run.sh", carry=[".gl", ".dev/bundle24n.tar.xz",
#       ".dev/vk24-qkv/new.tar.xz", ".dev/vk24-qkv/run.sh"])
# On a fresh box (.dev/ gone): the bundle is ci/bundle.sh of a Release build of this tree, tar'd
# as bundle/; new.tar.xz is new/ = the stripped tessera_backend_vulkan (RUNPATH
# '$ORIGIN:$ORIGIN/../..'), vulkan_gemv_lab and vulkan_backend_test (RUNPATH '$ORIGIN/../lib') of
# a build with the diff applied; copy this file to .dev/vk24-qkv/run.sh.
#   1. lab --glu --rope --reps 100, PIPELINE_STATS (registers, shared memory), 8b,1b,05b with
#      memcmp against old's dump: old (dump), new's default, the twin's modes $MODES (16 the
#      control: the twin with the default order; 32 EARLY, 64 CROSS, 128 XSHARED and their
#      sums); 8b only, unchecked: LOADS ONLY 4 / 228 (WRONG outputs: bounds), rd (LAB_READ=1056:
#      a plain read of the same bytes), new's default again (drift). The summary gives 8B q/k/v,
#      gate/up and their sum (us a layer) per mode and picks the fastest same-bits mode.
#   2. 8B: greedy md5 old / pick ("t1 t2 t3 t4" --raw -n 32 --temperature 0; HEAD cd6fcec7d66a);
#      tg128 old pick CUDA pick old (engine bench -p 16 -n 128 -r 2).
#   3. The Vulkan suites with the pick forced (vulkan_backend_test, op conformance, golden).
# No step starts past $DEADLINE s (the suites past $DEADLINE + 20); logs in $OUT/logs.tgz.
# Expected ~160 s on a warm machine (~70 s more cold; estimated from vk24-pref's calls: a lab run
# ~7 s with 3 shapes, ~4 s with 8b, an engine bench ~8 s); MODES="32 64 224" saves ~30 s. Keep a mode only if the 8B tg128 gains >= 1% (then make it a default keyed on
# a measured property, as vk24-pref's o / down rule).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vk24qkv; rm -rf $L; mkdir -p $L
trap 'tar czf $OUT/logs.tgz -C /tmp vk24qkv' EXIT
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
BUNDLE=${BUNDLE:-.dev/bundle24n.tar.xz}; NEWTAR=${NEWTAR:-.dev/vk24-qkv/new.tar.xz}
S=llama-3.1-8b
rm -f /tmp/$S.done
(python3 bench/make_checkpoint.py --shape $S --out /tmp/$S > /tmp/$S.ckpt.log 2>&1; touch /tmp/$S.done) &
tar xJf $BUNDLE -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; NB=/tmp/nb
rm -rf $NB && cp -r $B $NB
D=$(dirname $NEWTAR); tar xJf $NEWTAR -C $D
cp $D/new/libtessera_backend_vulkan.so $NB/lib/tessera/backends/; cp $D/new/vulkan_* $NB/bin/
OLD=$P/libtessera_backend_vulkan.so NEW=$NB/lib/tessera/backends/libtessera_backend_vulkan.so
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$NB/bin/engine devices 2>&1 | grep -E "vulkan:0|cuda:0"
V=TESSERA_VULKAN_
LAB=$NB/bin/vulkan_gemv_lab
lab() { local tag=$1 so=$2 a=$3 sh=8b,1b,05b; shift 3
  [ -z "$a" ] && sh=8b  # unchecked runs (bounds, drift): the 8B shape only
  env "$@" ${V}PIPELINE_STATS=1 TESSERA_VULKAN_PLUGIN=$so timeout 40 $LAB \
    --reps 100 --glu --rope --shapes $sh --copy-gbs 4230 $a > $L/lab_$tag.log 2>&1
  echo "--- $tag ($*) rc=$? t=$(el)"
  grep -E "^8b .*us/dispatch|same bits" $L/lab_$tag.log |
    sed -E 's/ +[0-9]+ dispatches +([0-9.]+) us\/dispatch +[0-9.]+ GB\/s +([0-9.]+) of copy.*; (.*)\)$/ \1 us \2 [\3]/' | cut -c1-110
  grep "pipeline stats matmul.comp skew+norm+pair" $L/lab_$tag.log | sort -u |
    sed -E 's/.*stats (matmul[^[]*).*(Register Count=[0-9]+).*(Shared Memory Size=[0-9]+).*/    \1 \2 \3/'; }
# 8B q/k/v and gate/up us a dispatch of a lab log, and their sum.
us() { awk '/^8b +qkv/ {for (i = 1; i <= NF; ++i) if ($i == "us/dispatch") q = $(i - 1)}
  /^8b +gate\/up/ {for (i = 1; i <= NF; ++i) if ($i == "us/dispatch") g = $(i - 1)}
  END {printf "%s %s %.2f", q, g, q + g}' $L/lab_$1.log; }
echo "=== lab t=$(el)"
lab old $OLD "--dump /tmp/old.bin" X=1
lab def $NEW "--check /tmp/old.bin" X=1
MODES=${MODES:-"16 32 64 96 128 160 224"}
for m in $MODES; do left && lab p$m $NEW "--check /tmp/old.bin" ${V}DECODE_PREF_PAIR=$m; done
for m in 4 228; do left && lab lo$m $NEW "" ${V}DECODE_PREF_PAIR=$m; done
left && lab rd $NEW "" ${V}LAB_READ=1056
left && lab def2 $NEW "" X=1
echo "=== 8B q/k/v, gate/up, sum (us a dispatch; a layer = one of each)"
PICK=0; BEST=1e9
for t in old def p16 p32 p64 p96 p128 p160 p224 lo4 lo228 rd def2; do
  [ -f $L/lab_$t.log ] || continue
  ok=$(grep -c "same bits.*: 0 of" $L/lab_$t.log)
  echo "  $t: $(us $t) (same bits: $ok)"
  case $t in p*) if [ "$ok" = 1 ]; then s=$(us $t | awk '{print $3}')
    if awk "BEGIN {exit !($s < $BEST)}"; then BEST=$s; PICK=${t#p}; fi; fi;; esac
done
echo "pick: DECODE_PREF_PAIR=$PICK ($BEST us; def $(us def | awk '{print $3}'), def2 $(us def2 | awk '{print $3}'))"
[ $PICK = 0 ] && PICK=224
tg() { cat $L/tg_$1_*.log 2>/dev/null | grep "| tg128" | awk '{s += $4; n++} END {if (n) printf "%.2f", s / n; else print 0}'; }
NI=0
eb() { local side=$1 bd=$NB; NI=$((NI + 1)); [ $side = old ] && bd=$B
  echo "--- $S $side t=$(el)"
  if [ $side = cuda ]; then LD_LIBRARY_PATH=$B/lib timeout 60 $B/bin/engine bench /tmp/$S --backend cuda -p 16 -n 128 -r 2 2>&1
  elif [ $side = pick ]; then env ${V}DECODE_PREF_PAIR=$PICK LD_LIBRARY_PATH=$bd/lib timeout 60 $bd/bin/engine bench /tmp/$S --backend vulkan -p 16 -n 128 -r 2 2>&1
  else LD_LIBRARY_PATH=$bd/lib timeout 60 $bd/bin/engine bench /tmp/$S --backend vulkan -p 16 -n 128 -r 2 2>&1; fi |
    grep -E "\| (pp|tg)[0-9]|rror" > $L/tg_${S}_${side}_$NI.log; sed "s/^/    /" $L/tg_${S}_${side}_$NI.log; }
while [ ! -f /tmp/$S.done ] && [ $(el) -lt 100 ]; do sleep 1; done
echo "=== engine 8B t=$(el)"
for side in old pick; do bd=$NB; pe=X=1; [ $side = old ] && bd=$B; [ $side = pick ] && pe=${V}DECODE_PREF_PAIR=$PICK
  env $pe LD_LIBRARY_PATH=$bd/lib timeout 45 $bd/bin/engine run /tmp/$S "t1 t2 t3 t4" --raw -n 32 --temperature 0 --backend vulkan > $L/run_$side.txt 2> $L/run_$side.err
  echo "  $side run rc=$? md5 $(md5sum < $L/run_$side.txt | cut -c1-12) (HEAD: cd6fcec7d66a)"
done
for side in old pick cuda pick old; do left && eb $side; done
echo "8B tg128 means: old $(tg ${S}_old) pick $(tg ${S}_pick) cuda $(tg ${S}_cuda)"
echo "=== suites (DECODE_PREF_PAIR=$PICK forced) t=$(el)"
if [ $(el) -lt $((DEADLINE + 20)) ]; then
  export ${V}DECODE_PREF_PAIR=$PICK
  TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $NB/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter='-*Coop*' > $L/vk_unit.log 2>&1
  echo "unit rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]' $L/vk_unit.log | tr '\n' ' ')"
  TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1
  echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $L/vk_conf.log | tr '\n' ' ')"
  TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
    timeout 50 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1
  echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $L/vk_golden.log | tr '\n' ' ')"
fi
echo "total $(el) s"
