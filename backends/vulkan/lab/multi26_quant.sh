#!/bin/bash
# Twenty-sixth session, the lead's q8 / q4 call (H200): MultiRows for quantized weights (the
# multi_q8 / multi_q4 modules) against MatmulRow (TESSERA_VULKAN_MULTI=0) on the 1B shape
# quantized at load. The tree's plugin, stripped and xz'ed, in .dev/multi26q/Q.so.xz; the rest
# from bundle26.
#   run(command="bash backends/vulkan/lab/multi26_quant.sh", carry=[".gl", ".dev/bundle26.tar.xz",
#       ".dev/multi26q"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-100}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
s=llama-3.2-1b
python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1 &
tar xJf .dev/bundle26.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib
xz -dc .dev/multi26q/Q.so.xz > $B/lib/tessera/backends/libtessera_backend_vulkan.so
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
TESSERA_VULKAN_PLUGIN=$B/lib/tessera/backends/libtessera_backend_vulkan.so timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter='*MatmulRows*' > $OUT/vk_unit.log 2>&1
echo "unit (MatmulRows, q8 / q4 cases) rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_unit.log | tr '\n' ' ') t=$(el)"
wait
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
for q in q8 q4; do line="$s $q:"
  for m in 1 0; do
    TESSERA_VULKAN_MULTI=$m timeout 60 $B/bin/engine run /tmp/$s "$P20" --quantize $q --raw -n 32 --temperature 0 --backend vulkan > $OUT/run_${q}_m$m.txt 2> $OUT/run_${q}_m$m.err
    line="$line MULTI=$m rc=$? $(md5sum < $OUT/run_${q}_m$m.txt | cut -c1-12)"
  done; echo "$line t=$(el)"
done
for q in q8 q4; do for m in 0 1 1 0; do
  left && echo "  $s $q MULTI=$m $(TESSERA_VULKAN_MULTI=$m timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan --quantize $q -p 16 -n 32 --parallel 8 -r 1 2>&1 | grep -E '\| (pp|tg)[0-9]|rror' | awk '{printf "%s %s  ", $2, $4}')"
done; done
echo "total $(el) s"
