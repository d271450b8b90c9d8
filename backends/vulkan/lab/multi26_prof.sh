#!/bin/bash
# Twenty-sixth session: where an 8B step of 8 / 32 rows goes on Vulkan (TESSERA_VULKAN_PROFILE=1,
# per-shader GPU time), MULTI=0 vs 1; bundle26 as multi26_gpu.sh.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
s=llama-3.1-8b
[ -f /tmp/$s/config.json ] || python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1
[ -d .dev/bundle ] || tar xJf .dev/bundle26.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
echo "ckpt t=$(el)"
for par in 8 32; do for m in 0 1; do
  TESSERA_VULKAN_PROFILE=1 TESSERA_VULKAN_MULTI=$m timeout 120 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 8 --parallel $par -r 1 > $OUT/prof_x${par}_m$m.log 2>&1
  echo "=== x$par MULTI=$m rc=$? t=$(el)"; grep -vE "^\[.*\] \[vulkan\] vulkan backend: (parameter|NVIDIA)" $OUT/prof_x${par}_m$m.log | grep -E "us|ms|\|" | head -40
done; done
