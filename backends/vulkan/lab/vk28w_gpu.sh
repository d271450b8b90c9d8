#!/bin/bash
# Twenty-eighth session, call 3 (H200): the normed row stored by every workgroup (its share)
# instead of workgroup 0 alone (matmul.comp WriteNormed; "new" = this tree's plugin) against
# HEAD's plugin ("old", bundle27): the Vulkan suites, greedy md5s, tg128 interleaved on the three
# shapes, the GEMV lab (8B), and new + the strided prototype (TESSERA_VULKAN_STRIDED=1) on 8B.
#   run(command="bash backends/vulkan/lab/vk28w_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz", ".dev/vk28"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-300}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
cp $VK /tmp/vk_old.so; xz -dc .dev/vk28/vk.so.xz > /tmp/vk_new.so; cp /tmp/vk_new.so $VK
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
echo "=== lab 8b (new) t=$(el)"
timeout 100 $B/bin/vulkan_gemv_lab --shapes 8b,lm8b --reps 20 --glu --rope --copy-gbs 4200 > $OUT/lab_new.txt 2>&1
grep -E "^(8b|lm8b) |PASSED|FAIL" $OUT/lab_new.txt
cp /tmp/vk_old.so $VK
timeout 100 $B/bin/vulkan_gemv_lab --shapes 8b,lm8b --reps 20 --glu --rope --copy-gbs 4200 > $OUT/lab_old.txt 2>&1
echo "--- old"; grep -E "^(8b|lm8b) |PASSED|FAIL" $OUT/lab_old.txt
wait_ckpt() { for i in $(seq 1 150); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== md5 (20-token prompt; HEAD: 0.5B 3a3763a3a87b, 1B 3304538b4d83, 8B fd5aaf203728) t=$(el)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for side in new old; do
    cp /tmp/vk_$side.so $VK
    timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 32 --temperature 0 --backend vulkan > $OUT/run.txt 2> $OUT/run.err
    line="$line $side rc=$? $(md5sum < $OUT/run.txt | cut -c1-12)"
  done; echo "$line t=$(el)"
done
eb() { local s=$1 side=$2; shift 2; cp /tmp/vk_$side.so $VK
  echo "  $s $side $* $(env "$@" timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
echo "=== tg128 interleaved t=$(el)"
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  for side in old new new old; do left && eb $s $side D=0; done
done
left && eb llama-3.1-8b new TESSERA_VULKAN_STRIDED=1
left && eb llama-3.1-8b new D=0
left && eb llama-3.1-8b new TESSERA_VULKAN_STRIDED=1
echo "total $(el) s"
