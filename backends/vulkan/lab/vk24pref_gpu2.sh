#!/bin/bash
# vk24-pref call 2 (NVIDIA H200): why the lab's o + down gain of DECODE_PREF=10 (full + x: 58.7 ->
# 53.8 us a layer, call 1) did not show in the 8B tg128 (152.45 / 152.48). The engine's own
# per-module GPU time (TESSERA_VULKAN_PROFILE=1, engine run -n 64) for def and 10,0,0; while the
# checkpoint is made, the LM head (the skew+norm kind: lm8b) in the lab, def / 0,10,0 / 0,2,0.
# Same $BUNDLE / $NEWTAR / .gl as vk24pref_gpu.sh. Logs in $OUT/logs2.tgz. ~75 s cold.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vk24pref2; rm -rf $L; mkdir -p $L
trap 'tar czf $OUT/logs2.tgz -C /tmp vk24pref2' EXIT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
BUNDLE=${BUNDLE:-.dev/bundle24.tar.xz}; NEWTAR=${NEWTAR:-.dev/vk24-pref/new.tar.xz}
S=llama-3.1-8b; rm -f /tmp/$S.done
(python3 bench/make_checkpoint.py --shape $S --out /tmp/$S > /tmp/$S.ckpt.log 2>&1; touch /tmp/$S.done) &
tar xJf $BUNDLE -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; NB=/tmp/nb
rm -rf $NB && cp -r $B $NB
D=$(dirname $NEWTAR); tar xJf $NEWTAR -C $D
cp $D/new/libtessera_backend_vulkan.so $NB/lib/tessera/backends/; cp $D/new/vulkan_* $NB/bin/
NEW=$NB/lib/tessera/backends/libtessera_backend_vulkan.so
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V=TESSERA_VULKAN_
echo "=== lab lm8b t=$(el)"
for pf in 0 0,10,0 0,2,0; do
  env ${V}DECODE_PREF=$pf ${V}PIPELINE_STATS=1 TESSERA_VULKAN_PLUGIN=$NEW timeout 30 $NB/bin/vulkan_gemv_lab \
    --reps 30 --shapes lm8b --copy-gbs 4230 $([ $pf = 0 ] && echo --dump /tmp/lm.bin || echo --check /tmp/lm.bin) > $L/lab_lm_$pf.log 2>&1
  echo "--- PREF=$pf rc=$? t=$(el)"; grep -E "us/dispatch|same bits|Register" $L/lab_lm_$pf.log | sed -E 's/ +/ /g' | cut -c1-150
done
while [ ! -f /tmp/$S.done ] && [ $(el) -lt 70 ]; do sleep 1; done
echo "=== engine profile (run -n 64, PROFILE=1) t=$(el)"
for pf in 0 10,0,0; do
  ( export ${V}DECODE_PREF=$pf ${V}PROFILE=1
    LD_LIBRARY_PATH=$NB/lib timeout 30 $NB/bin/engine run /tmp/$S "t1 t2 t3 t4" --raw -n 64 --temperature 0 --backend vulkan > $L/run_$pf.txt 2> $L/run_$pf.err
    echo "--- PREF=$pf rc=$? md5 $(md5sum < $L/run_$pf.txt | cut -c1-12) t=$(el)" )
  grep -E "tokens/s|matmul.comp|l2_warm|attention|rows.comp|rope|sum of|submissions" $L/run_$pf.err | sed -E 's/^\[[^]]*\] //; s/ +/ /g' | cut -c1-120
done
echo "total $(el) s"
