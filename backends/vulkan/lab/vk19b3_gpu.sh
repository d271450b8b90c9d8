#!/bin/bash
# vk19b call 2 (nineteenth session; call 1's split lines lacked `env`, and the warm machine it left
# was gone): the lab alone on a fresh machine, 8B head shape only (bits over 1..1024 keys in
# batches of 128 sequences + the T = 1 rows against old's dump; us a call at 144 / 512 / 2048
# keys), old then the split / prefetch configurations until DEADLINE. Carry as vk19b_gpu.sh.
# It ran the plugin with PREF (results/vk19b/prefetch_not_kept.diff applied): with the final
# plugin TESSERA_VULKAN_ATTN_PREFETCH is ignored, so "4 1" repeats "4 0" and "1 1" is unsplit.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vk19blogs3; mkdir -p $L
trap 'cp $L/*.log $OUT/ 2>/dev/null' EXIT
exec > >(tee $L/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-15}
el() { echo $(( $(date +%s) - T0 )); }
mkdir -p /tmp/new && tar xJf .dev/bundle19.tar.xz -C /tmp bundle/lib && tar xJf .dev/vk19b/gpu/new.tar.xz -C /tmp/new
export LD_LIBRARY_PATH=/tmp/bundle/lib
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V=TESSERA_VULKAN_; LAB=/tmp/new/vulkan_attn_lab
A="--shapes 8b --reps 100 --keys 144,512,2048 --max-keys 1024 --batch 128 --copies 8"
echo "=== old t=$(el)"
TESSERA_VULKAN_PLUGIN=/tmp/new/old/libtessera_backend_vulkan.so timeout 12 $LAB $A --dump /tmp/old.bin 2>&1 | grep -E "us/call|PASSED|FAILED|rror"
for cfg in "4 0" "4 1" "1 1" "8 0" "8 1" "2 0"; do
  [ $(el) -lt $DEADLINE ] || break; set -- $cfg
  echo "=== parts $1 pref $2 t=$(el)"
  env ${V}ATTN_SPLIT_GROUPS=100000 ${V}ATTN_PARTS=$1 ${V}ATTN_PREFETCH=$2 TESSERA_VULKAN_PLUGIN=/tmp/new/libtessera_backend_vulkan.so \
    timeout 8 $LAB $A --check /tmp/old.bin 2>&1 | grep -E "us/call|same bits|PASSED|FAILED|rror" | sed 's/Hq.*D *[0-9]* //'
done
echo "total $(el) s"
