#!/bin/bash
# vk23-dec (twenty-third session): Vulkan 8B decode on the H200. HEAD keyed the H100's decode
# defaults (L2 warm-up, persistent norm-fused groups, split decode attention) on the product name
# ("H100"), so the H200 ran without them; the new plugin keys them on queried properties (NVIDIA
# discrete, >= 100 SMs, >= 64 GiB device-local: plugin.cc hbm_class; TESSERA_VULKAN_HBM_CLASS=0 =
# off). One call, from the repo root, carrying .dev/bundle23.tar.xz (HEAD's bundle: old = its
# plugin), .dev/vk23-dec/new.tar.xz (new/: the new stripped vulkan plugin, vulkan_gemv_lab,
# vulkan_attn_lab, vulkan_backend_test) and .gl (glvnd):
#   1. lab: each 8B decode GEMV dispatch old / new / knobs, against a plain read of the same bytes
#      (TESSERA_VULKAN_LAB_READ), fraction of the H200's 4,230 GB/s copy; outputs memcmp'd
#      against old's dump; decode attention old / new (bits + us a call)
#   2. Vulkan suites on the new plugin (vulkan_backend_test, op conformance, golden)
#   3. engine 8B: greedy md5 old / new; tg128 old new new old + CUDA between; knob variants
# No step starts past $DEADLINE s; logs in $OUT (logs.tgz).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vk23logs; rm -rf $L; mkdir -p $L
trap 'tar czf $OUT/logs.tgz -C /tmp vk23logs' EXIT
T0=$(date +%s); DEADLINE=${DEADLINE:-170}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
S=llama-3.1-8b
rm -f /tmp/$S.done
(python3 bench/make_checkpoint.py --shape $S --out /tmp/$S > /tmp/$S.ckpt.log 2>&1; touch /tmp/$S.done) &
tar xJf .dev/bundle23.tar.xz -C .dev && tar xJf .dev/vk23-dec/new.tar.xz -C .dev/vk23-dec
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; NB=/tmp/nb
rm -rf $NB && cp -r $B $NB && cp .dev/vk23-dec/new/libtessera_backend_vulkan.so $NB/lib/tessera/backends/
for f in .dev/vk23-dec/new/vulkan_*; do cp $f $B/bin/; done
OLD=$P/libtessera_backend_vulkan.so NEW=$NB/lib/tessera/backends/libtessera_backend_vulkan.so
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$NB/bin/engine devices 2>&1 | grep -E "vulkan:0|cuda:0"
V=TESSERA_VULKAN_
declare -A KN=([old]="" [new]="" [hbm0]="${V}HBM_CLASS=0" [rd]="${V}LAB_READ=1056"
  [rd2]="${V}LAB_READ=2112" [kp2]="${V}DECODE_KPIECES=2" [kp4]="${V}DECODE_KPIECES=4"
  [xs2]="${V}DECODE_XSPLIT=2" [r2]="${V}DECODE_ROWS=2" [p264]="${V}PERSIST=264")
lab() { local tag=$1 a="--check /tmp/old.bin" so=$NEW
  case $tag in old) so=$OLD; a="--dump /tmp/old.bin";; rd*) a=;; esac
  env ${KN[$tag]} ${V}PIPELINE_STATS=1 TESSERA_VULKAN_PLUGIN=$so timeout 40 $B/bin/vulkan_gemv_lab \
    --reps 100 --glu --rope --shapes 8b --copy-gbs 4230 $a > $L/lab_$tag.log 2>&1
  echo "--- $tag (${KN[$tag]}) rc=$? t=$(el)"
  grep -E "us/dispatch|same bits|differ" $L/lab_$tag.log |
    sed -E 's/ +[0-9]+ dispatches +([0-9.]+) us\/dispatch +[0-9.]+ GB\/s +([0-9.]+) of copy.*; (.*)\)$/ \1 us \2 [\3]/' | cut -c1-110
  grep "pipeline stats matmul.comp skew" $L/lab_$tag.log | sort -u |
    sed -E 's/.*stats (matmul[^[]*).*(Register Count=[0-9]+), (Binary Size=[0-9]+).*(Shared Memory Size=[0-9]+).*/    \1 \2 \3 \4/'; }
echo "=== lab t=$(el)"
for tag in old new hbm0 rd kp2 xs2 r2 p264; do left && lab $tag; done
echo "=== attention lab t=$(el)"
AL="--shapes 8b --reps 50 --keys 16,144,512,2048 --max-keys 640 --batch 128 --copies 8"
TESSERA_VULKAN_PLUGIN=$OLD timeout 40 $B/bin/vulkan_attn_lab $AL --dump /tmp/attn_old.bin > $L/attn_old.log 2>&1
echo "old rc=$?"; grep -E "us/call" $L/attn_old.log
TESSERA_VULKAN_PLUGIN=$NEW timeout 40 $B/bin/vulkan_attn_lab $AL --check /tmp/attn_old.bin > $L/attn_new.log 2>&1
echo "new rc=$?"; grep -E "us/call|same bits|differ" $L/attn_new.log
suites() {
echo "=== suites (new plugin, defaults) t=$(el)"
TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter='-*Coop*' > $L/vk_unit.log 2>&1
echo "unit rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]' $L/vk_unit.log | tr '\n' ' ')"
TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1
echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $L/vk_conf.log | tr '\n' ' ')"
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
  timeout 50 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1
echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $L/vk_golden.log | tr '\n' ' ')"
}
# engine: old = the bundle's tree, new = its copy with the new vulkan plugin
eb() { local side=$1 d=$B; shift; [ $side != old ] && d=$NB
  LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench /tmp/$S "$@" 2>&1 | grep -E "\| (pp|tg)[0-9]|rror" | sed "s/^/    /"; }
while [ ! -f /tmp/$S.done ] && [ $(el) -lt 120 ]; do sleep 1; done
echo "=== engine t=$(el)"
PROMPT="The capital of France is a city that has many old buildings and"
for side in old new; do d=$B; [ $side = new ] && d=$NB
  LD_LIBRARY_PATH=$d/lib timeout 45 $d/bin/engine run /tmp/$S "$PROMPT" --raw -n 32 --temperature 0 --backend vulkan > $L/run_$side.txt 2> $L/run_$side.err
  echo "  $side run rc=$? md5 $(md5sum < $L/run_$side.txt | cut -c1-12)"; done
cmp -s $L/run_old.txt $L/run_new.txt && echo "  greedy: same bytes" || echo "  greedy: DIFFER"
for side in old new cuda new old suites nol2 nop1 p512o p512n cuda; do
  if [ $side = suites ]; then suites; continue; fi
  left || break
  case $side in
    cuda) echo "--- cuda t=$(el)"; eb old --backend cuda -p 16 -n 128 -r 2 ;;
    nol2) echo "--- new L2_WARM=0"; (export ${V}L2_WARM=0; eb new --backend vulkan -p 16 -n 128 -r 2) ;;
    nop1) echo "--- new ATTN_PARTS=1"; (export ${V}ATTN_PARTS=1; eb new --backend vulkan -p 16 -n 128 -r 2) ;;
    p512o) echo "--- old -p 512"; eb old --backend vulkan -p 512 -n 128 -r 2 ;;
    p512n) echo "--- new -p 512"; eb new --backend vulkan -p 512 -n 128 -r 2 ;;
    *) echo "--- $side t=$(el)"; eb $side --backend vulkan -p 16 -n 128 -r 2 ;;
  esac
done
echo "total $(el) s"
