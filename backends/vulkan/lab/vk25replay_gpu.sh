#!/bin/bash
# vk25-replay (twenty-fifth session): a decode step's command buffer recorded once and replayed
# (plugin.cc tsr_device::ReplayEntry; TESSERA_VULKAN_REPLAY=0 = before). One call:
#   1. the Vulkan suites with the new plugin (vulkan_backend_test incl.
#      ReplayedStepsMatchDirectExecutes, coop tests filtered out; op conformance; golden), in
#      parallel while the checkpoints are made;
#   2. greedy md5 old / new / new with TESSERA_VULKAN_REPLAY=0 (`engine run CKPT "t1 t2 t3 t4"
#      --raw -n 32 --temperature 0`; HEAD: 0.5B 2391bb0c7bf6, 1B 01bb3265df58, 8B cd6fcec7d66a),
#      the new runs at --log-level debug (the plugin's replay counts at device close);
#   3. tg128 (`engine bench CKPT -p 16 -n 128 -r 2`) 0.5B / 1B old new new old, 8B old new cuda
#      new old (cuda: the bundle's plugin, for the ratio);
#   4. TESSERA_VULKAN_PROFILE=2 step profile (-n 32 -r 1) of the 8B, old and new.
# old = the bundle's Vulkan plugin, new = .dev/vk25-replay/new.tar.xz (new/: the stripped plugin,
# RUNPATH '$ORIGIN:$ORIGIN/../..', and vulkan_backend_test, RUNPATH '$ORIGIN/../lib'), put into a
# copy of the bundle. No step starts past $DEADLINE s; logs in $OUT/logs.tgz.
#   run(command="bash .dev/vk25-replay/run.sh", carry=[".gl", ".dev/bundle25.tar.xz",
#       ".dev/vk25-replay/new.tar.xz", ".dev/vk25-replay/run.sh"], timeout_s=280)
# Ran once (13:18 UTC, DEADLINE=165: 131 s wall, 184 s of device time with the start) on the
# change's first form (the key pass before a missing execute); results/vk25replay/call1/. With
# the tree's form, the same call also answers whether pp16 is back at old's (README vk25-replay).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vk25replay; rm -rf $L; mkdir -p $L
trap 'tar czf $OUT/logs.tgz -C /tmp vk25replay' EXIT
T0=$(date +%s); DEADLINE=${DEADLINE:-200}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
BUNDLE=${BUNDLE:-.dev/bundle25.tar.xz}; NEWTAR=${NEWTAR:-.dev/vk25-replay/new.tar.xz}
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf $BUNDLE -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; NB=/tmp/nb
rm -rf $NB && cp -r $B $NB
D=$(dirname $NEWTAR); tar xJf $NEWTAR -C $D
cp $D/new/libtessera_backend_vulkan.so $NB/lib/tessera/backends/; cp $D/new/vulkan_backend_test $NB/bin/
OLD=$P/libtessera_backend_vulkan.so NEW=$NB/lib/tessera/backends/libtessera_backend_vulkan.so
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$NB/bin/engine devices 2>&1 | grep -E "vulkan:0|cuda:0"
echo "=== suites (new plugin), in parallel t=$(el)"
(TESSERA_VULKAN_PLUGIN=$NEW timeout 90 $NB/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter='-*Coop*' > $L/vk_unit.log 2>&1; echo "rc=$?" >> $L/vk_unit.log) &
(TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1; echo "rc=$?" >> $L/vk_conf.log) &
(TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1; echo "rc=$?" >> $L/vk_golden.log) &
wait $(jobs -p | tail -3)
for f in unit conf golden; do echo "$f $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]|^rc=' $L/vk_$f.log | tr '\n' ' ')"; done
grep -E "Failure|FAILED" $L/vk_unit.log | head -5
echo "suites done t=$(el)"
V=TESSERA_VULKAN_
NI=0
# eb SHAPE SIDE: tg128 of old (bundle plugin) / new / r0 (new, REPLAY=0) / cuda.
eb() { local s=$1 side=$2 bd=$NB be=vulkan pe=X=1; NI=$((NI + 1))
  case $side in old) bd=$B;; cuda) bd=$B; be=cuda;; r0) pe=${V}REPLAY=0;; esac
  env $pe LD_LIBRARY_PATH=$bd/lib timeout 60 $bd/bin/engine bench /tmp/$s --backend $be -p 16 -n 128 -r 2 2>&1 |
    grep -E "\| (pp|tg)[0-9]|rror" > $L/tg_${s}_${side}_$NI.log
  echo "  $s $side: $(grep tg128 $L/tg_${s}_${side}_$NI.log | awk '{print $4, $5, $6}') t=$(el)"; }
# md5 SHAPE SIDE
md5() { local s=$1 side=$2 bd=$NB pe=X=1 lv=debug
  case $side in old) bd=$B; lv=info;; r0) pe=${V}REPLAY=0;; esac
  env $pe LD_LIBRARY_PATH=$bd/lib timeout 60 $bd/bin/engine --log-level $lv run /tmp/$s "t1 t2 t3 t4" --raw -n 32 --temperature 0 --backend vulkan > $L/run_${s}_$side.txt 2> $L/run_${s}_$side.err
  echo "  $s $side rc=$? md5 $(md5sum < $L/run_${s}_$side.txt | cut -c1-12) $(grep -o 'replay: .*' $L/run_${s}_$side.err)"; }
tg() { cat $L/tg_$1_*.log 2>/dev/null | grep "| tg128" | awk '{s += $4; n++} END {if (n) printf "%.2f (%d)", s / n, n; else print 0}'; }
for s in qwen2.5-0.5b llama-3.2-1b; do
  while [ ! -f /tmp/$s.done ] && [ $(el) -lt 60 ]; do sleep 1; done
  echo "=== $s t=$(el)"
  for side in old new r0; do left && md5 $s $side; done
  for side in old new new old; do left && eb $s $side; done
done
S=llama-3.1-8b
while [ ! -f /tmp/$S.done ] && [ $(el) -lt 120 ]; do sleep 1; done
echo "=== $S t=$(el)"
for side in old new r0; do left && md5 $S $side; done
for side in old new cuda new old; do left && eb $S $side; done
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  echo "$s tg128 means: old $(tg ${s}_old) new $(tg ${s}_new)$([ $s = $S ] && echo " cuda $(tg ${s}_cuda)")"
done
echo "=== 8B step profile (PROFILE=2, -n 32 -r 1) t=$(el)"
for side in old new; do
  [ $(el) -lt $((DEADLINE + 15)) ] || break
  bd=$NB; [ $side = old ] && bd=$B
  env ${V}PROFILE=2 LD_LIBRARY_PATH=$bd/lib timeout 40 $bd/bin/engine bench /tmp/$S --backend vulkan -p 16 -n 32 -r 1 > $L/prof_$side.log 2>&1
  echo "--- $side rc=$?"; grep -E "step profile|step medians|replay:" $L/prof_$side.log | sed -E 's/^.*(vulkan backend)/\1/' | cut -c1-900
done
echo "total $(el) s"
