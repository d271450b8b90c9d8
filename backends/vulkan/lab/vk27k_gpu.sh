#!/bin/bash
# Twenty-seventh session, call 4 (H200): HEAD's Vulkan 8B decode with the L2 warm-up off
# (TESSERA_VULKAN_L2_WARM=0: +0.3 / +0.6 / +0.8% in single runs of three earlier calls) in
# interleaved pairs against the default, and the attention split at 2 / 8 parts, L2 warm of 10 MB.
#   run(command="bash backends/vulkan/lab/vk27k_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-240}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
s=llama-3.1-8b
python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1 &
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
wait
eb() { echo "  $* $(env "$@" timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for v in D=1 TESSERA_VULKAN_L2_WARM=0 TESSERA_VULKAN_L2_WARM=0 D=1 D=1 TESSERA_VULKAN_L2_WARM=0 \
         TESSERA_VULKAN_ATTN_PARTS=8 TESSERA_VULKAN_ATTN_PARTS=2 TESSERA_VULKAN_L2_WARM_MB=10 \
         TESSERA_VULKAN_L2_WARM=0 D=1; do
  left && eb $v; done
echo "  CUDA $(timeout 60 $B/bin/engine bench /tmp/$s --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"
echo "total $(el) s"
