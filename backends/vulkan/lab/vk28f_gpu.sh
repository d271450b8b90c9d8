#!/bin/bash
# Twenty-eighth session, call 6 (H200): the final tree's Vulkan plugin ("new": the normed row
# stored by every workgroup, matmul.comp WriteNormed) against HEAD 1950abe's ("head"): Vulkan
# suites, greedy md5s, the GEMV lab, tg128 interleaved on the three shapes, CUDA 8B for the ratio.
#   run(command="bash backends/vulkan/lab/vk28f_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz", ".dev/vk28"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-260}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
xz -dc .dev/vk28/vk_head.so.xz > /tmp/vk_head.so; xz -dc .dev/vk28/vk.so.xz > /tmp/vk_new.so; cp /tmp/vk_new.so $VK
xz -dc .dev/vk28/vbt.xz > /tmp/vbt; chmod +x /tmp/vbt
xz -dc .dev/vk28/gemvlab.xz > $B/bin/vulkan_gemv_lab; chmod +x $B/bin/vulkan_gemv_lab
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
echo "=== suites (new) t=$(el)"
TESSERA_VULKAN_PLUGIN=$VK timeout 100 /tmp/vbt --gtest_brief=1 --gtest_filter='-*Coop*' > $OUT/vk_unit.log 2>&1
echo "unit rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]|FAILED  \]' $OUT/vk_unit.log | tr '\n' ' ')"
TESSERA_CONFORMANCE_PLUGINS=$VK timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/vk_conf.log 2>&1
echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_conf.log | tr '\n' ' ')"
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$VK:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_golden.log | tr '\n' ' ')"
export TESSERA_VULKAN_PLUGIN=$VK
for side in new head new; do cp /tmp/vk_$side.so $VK
  timeout 100 $B/bin/vulkan_gemv_lab --shapes 8b,1b,05b --reps 20 --glu --rope --copy-gbs 4200 > $OUT/lab_$side.txt 2>&1
  echo "--- lab $side t=$(el)"; grep -E "^(8b|1b|05b) .*norm|PASSED|FAIL" $OUT/lab_$side.txt | sed 's/ dispatches//;s/us\/dispatch/us/' | cut -c1-110
done
wait_ckpt() { for i in $(seq 1 150); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== md5 (HEAD: 0.5B 3a3763a3a87b, 1B 3304538b4d83, 8B fd5aaf203728) t=$(el)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for side in new head; do cp /tmp/vk_$side.so $VK
    timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 32 --temperature 0 --backend vulkan > $OUT/run.txt 2> $OUT/run.err
    line="$line $side rc=$? $(md5sum < $OUT/run.txt | cut -c1-12)"
  done; echo "$line t=$(el)"
done
eb() { local s=$1 side=$2 be=${3:-vulkan}; cp /tmp/vk_$side.so $VK
  echo "  $s $side $be $(timeout 60 $B/bin/engine bench /tmp/$s --backend $be -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
echo "=== tg128 interleaved t=$(el)"
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  for side in head new new head head new; do left && eb $s $side; done
done
left && eb llama-3.1-8b new cuda
echo "total $(el) s"
