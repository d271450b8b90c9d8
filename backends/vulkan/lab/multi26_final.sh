#!/bin/bash
# Twenty-sixth session, the lead's last call (H200): MultiRows with DROWS weight rows a subgroup
# (the tree, "A") against MatmulRow (TESSERA_VULKAN_MULTI=0, "old") and a twin plugin whose x
# tile is copied in two halves with a barrier between ("B", .dev/multiB: fewer registers live).
#   run(command="bash backends/vulkan/lab/multi26_final.sh", carry=[".gl", ".dev/bundle26.tar.xz",
#       ".dev/multiB"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-300}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle26.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
NB=/tmp/nb; rm -rf $NB && cp -r $B $NB && cp .dev/multiB/libtessera_backend_vulkan.so $NB/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
echo "=== Vulkan suites (A) t=$(el)"
TESSERA_VULKAN_PLUGIN=$VK timeout 100 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter='-*Coop*' > $OUT/vk_unit.log 2>&1
echo "unit rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]' $OUT/vk_unit.log | tr '\n' ' ')"
TESSERA_VULKAN_PLUGIN=$NB/lib/tessera/backends/libtessera_backend_vulkan.so timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter='*MatmulRows*' > $OUT/vk_unit_B.log 2>&1
echo "unit B (MatmulRows) rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_unit_B.log | tr '\n' ' ')"
TESSERA_CONFORMANCE_PLUGINS=$VK timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/vk_conf.log 2>&1
echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_conf.log | tr '\n' ' ')"
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$VK:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_golden.log | tr '\n' ' ')"
L=$OUT/eb; mkdir -p $L
wait_ckpt() { for i in $(seq 1 120); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== md5 (20-token prompt) t=$(el)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  wait_ckpt $s || { echo "$s: no checkpoint"; continue; }
  line="$s:"
  for side in A B old; do bd=$B; m=1; [ $side = B ] && bd=$NB; [ $side = old ] && m=0
    TESSERA_VULKAN_MULTI=$m LD_LIBRARY_PATH=$bd/lib timeout 45 $bd/bin/engine run /tmp/$s "$P20" --raw -n 32 --temperature 0 --backend vulkan > $L/run_${s}_$side.txt 2> $L/run_${s}_$side.err
    line="$line $side rc=$? $(md5sum < $L/run_${s}_$side.txt | cut -c1-12)"
  done
  echo "$line"
done
NI=0
eb() { local s=$1 side=$2 par=$3 R="-r $4"; shift 4; local bd=$B m=1; NI=$((NI + 1))
  [ $side = old ] && m=0; [ $side = B ] && bd=$NB
  env TESSERA_VULKAN_MULTI=$m LD_LIBRARY_PATH=$bd/lib "$@" timeout 90 $bd/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 32 --parallel $par $R 2>&1 |
    grep -E "\| (pp|tg)[0-9]|rror" > $L/b_${s}_${side}_x${par}_$NI.log
  echo "  $s $side x$par $R $* $(awk '{printf "%s %s  ", $2, $4}' $L/b_${s}_${side}_x${par}_$NI.log)"; }
echo "=== bench t=$(el)"
for side in old A B B A old; do left && eb llama-3.1-8b $side 8 2; done
for par in 16 32; do for side in old A B; do left && eb llama-3.1-8b $side $par 1; done; done
for s in llama-3.2-1b qwen2.5-0.5b; do
  for side in old A B B A old; do left && eb $s $side 8 2; done
  for side in old A B; do left && eb $s $side 32 1; done
done
echo "=== registers t=$(el)"
for side in A B; do bd=$B; [ $side = B ] && bd=$NB
  left && TESSERA_VULKAN_PIPELINE_STATS=1 LD_LIBRARY_PATH=$bd/lib timeout 60 $bd/bin/engine run /tmp/qwen2.5-0.5b "t1 t2 t3 t4" -n 1 --raw --temperature 0 --backend vulkan 2>&1 | grep -E "stats matmul.comp multi" | sed "s/^/$side /" | cut -c1-200
done
echo "total $(el) s"
