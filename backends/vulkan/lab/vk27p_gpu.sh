#!/bin/bash
# Twenty-seventh session, call 7 (H200): where an 8B decode step goes with the final tree's
# plugin (TESSERA_VULKAN_PROFILE=1: every dispatch timed alone, per shader; =2: the step's idle),
# and the attention split / L2 warm-up knobs again with the k RoPE + KV fold in place.
#   run(command="bash backends/vulkan/lab/vk27p_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz", ".dev/vk27f"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-200}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
s=llama-3.1-8b
python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1 &
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
xz -dc .dev/vk27f/vk.so.xz > $P/libtessera_backend_vulkan.so
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
wait
echo "=== PROFILE=1 (dispatches serialized) t=$(el)"
TESSERA_VULKAN_PROFILE=1 timeout 90 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 64 -r 1 > $OUT/prof1.txt 2>&1
grep -E "calls|wall|busy|tg64|pp16" $OUT/prof1.txt | head -40
echo "=== PROFILE=2 (step mode) t=$(el)"
TESSERA_VULKAN_PROFILE=2 timeout 90 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 64 -r 1 > $OUT/prof2.txt 2>&1
grep -E -i "median|idle|tg64" $OUT/prof2.txt | head -30
eb() { echo "  $* $(env "$@" timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
echo "=== knobs t=$(el)"
for v in D=1 TESSERA_VULKAN_ATTN_PARTS=2 TESSERA_VULKAN_L2_WARM=1 D=1 TESSERA_VULKAN_ATTN_PARTS=8 TESSERA_VULKAN_ATTN_PARTS=2 D=1; do
  left && eb $v; done
echo "total $(el) s"
