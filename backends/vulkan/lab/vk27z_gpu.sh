#!/bin/bash
# Twenty-seventh session, call 9 (H200): the fold's newest key checked against the block table
# as the key loop checks every key (error parity), the final tree's plugin: vulkan_backend_test,
# op conformance, golden, the 8B greedy md5 and a tg128 pair against call 5's plugin (vk27kv).
#   run(command="bash backends/vulkan/lab/vk27z_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz", ".dev/vk27z", ".dev/vk27kv"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
s=llama-3.1-8b
python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1 &
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
xz -dc .dev/vk27z/vk.so.xz > /tmp/vk_new.so; xz -dc .dev/vk27kv/vk.so.xz > /tmp/vk_c5.so; cp /tmp/vk_new.so $VK
xz -dc .dev/vk27z/vbt.xz > /tmp/vbt; chmod +x /tmp/vbt
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
TESSERA_VULKAN_PLUGIN=$VK timeout 120 /tmp/vbt --gtest_brief=1 --gtest_filter='-*Coop*' > $OUT/vk_unit.log 2>&1
echo "unit rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]|FAILED  \]' $OUT/vk_unit.log | tr '\n' ' ') t=$(el)"
TESSERA_CONFORMANCE_PLUGINS=$VK timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/vk_conf.log 2>&1
echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_conf.log | tr '\n' ' ')"
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$VK:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_golden.log | tr '\n' ' ') t=$(el)"
wait
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 32 --temperature 0 --backend vulkan > $OUT/run.txt 2>/dev/null
echo "8B md5 (fd5aaf203728 expected) rc=$? $(md5sum < $OUT/run.txt | cut -c1-12) t=$(el)"
for side in new c5 new c5; do cp /tmp/vk_$side.so $VK
  echo "  $side $(timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"
done
cp /tmp/vk_new.so $VK
echo "total $(el) s"
