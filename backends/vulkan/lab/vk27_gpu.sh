#!/bin/bash
# Twenty-seventh session, call 1 (H200): HEAD's Vulkan plugin (q8 / q4 MultiRows, the 4-lane fix,
# the DecodeW8 / Fma8 cleanup: none of it had run on a GPU) through the suites and greedy md5s;
# MultiRows at 2 / 4 rows and for q8 / q4 against MULTI=0; the 8B decode with the L2 warm-up
# also after the grouped GEMVs (mask 5: gate/up's tail reads down's first bytes) and with
# DECODE_KPIECES=4 (README vk23-dec "Left" 1), interleaved with the defaults.
#   run(command="bash backends/vulkan/lab/vk27_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in llama-3.1-8b llama-3.2-1b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
echo "=== Vulkan suites t=$(el)"
TESSERA_VULKAN_PLUGIN=$VK timeout 100 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter='-*Coop*' > $OUT/vk_unit.log 2>&1
echo "unit rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]' $OUT/vk_unit.log | tr '\n' ' ')"
TESSERA_CONFORMANCE_PLUGINS=$VK timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/vk_conf.log 2>&1
echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_conf.log | tr '\n' ' ')"
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$VK:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_golden.log | tr '\n' ' ')"
L=$OUT/eb; mkdir -p $L
wait_ckpt() { for i in $(seq 1 150); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== md5 (20-token prompt; session 26: 1B 3304538b4d83, 8B fd5aaf203728) t=$(el)"
wait_ckpt llama-3.2-1b
for s in llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for v in "" "TESSERA_VULKAN_L2_WARM=5" "TESSERA_VULKAN_DECODE_KPIECES=4"; do
    env $v timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 32 --temperature 0 --backend vulkan > $L/run.txt 2> $L/run.err
    line="$line [$v] rc=$? $(md5sum < $L/run.txt | cut -c1-12)"
  done; echo "$line t=$(el)"
done
s=llama-3.2-1b
for q in q8 q4; do line="$s $q:"
  for m in 1 0; do
    TESSERA_VULKAN_MULTI=$m timeout 60 $B/bin/engine run /tmp/$s "$P20" --quantize $q --raw -n 32 --temperature 0 --backend vulkan > $L/run_${q}_m$m.txt 2> $L/run_${q}_m$m.err
    line="$line MULTI=$m rc=$? $(md5sum < $L/run_${q}_m$m.txt | cut -c1-12)"
  done; echo "$line t=$(el)"
done
NI=0
eb() { local s=$1 args=$2; shift 2; NI=$((NI + 1))
  env "$@" timeout 90 $B/bin/engine bench /tmp/$s --backend vulkan $args 2>&1 |
    grep -E "\| (pp|tg)[0-9]|rror" > $L/b_$NI.log
  echo "  $s [$args] $* $(awk '{printf "%s %s  ", $2, $4}' $L/b_$NI.log) t=$(el)"; }
echo "=== 8B decode: L2 warm mask 5 / KPIECES 4 vs default t=$(el)"
T="-p 16 -n 128 -r 2"
for v in D=1 TESSERA_VULKAN_L2_WARM=5 TESSERA_VULKAN_DECODE_KPIECES=4 D=1 TESSERA_VULKAN_L2_WARM=5 TESSERA_VULKAN_L2_WARM=0; do
  left && eb llama-3.1-8b "$T" $v; done
echo "=== q8 / q4 MultiRows (1B x8) t=$(el)"
for q in q8 q4; do for m in 0 1 1 0; do
  left && eb $s "--quantize $q -p 16 -n 32 --parallel 8 -r 1" TESSERA_VULKAN_MULTI=$m; done; done
echo "=== 2 / 4 rows (8B, bf16) t=$(el)"
for m in 0 1 1 0; do left && eb llama-3.1-8b "-p 4 -n 32 --parallel 2 -r 1" TESSERA_VULKAN_MULTI=$m; done
for m in 0 1; do left && eb llama-3.1-8b "-p 16 -n 32 --parallel 4 -r 1" TESSERA_VULKAN_MULTI=$m; done
echo "total $(el) s"
