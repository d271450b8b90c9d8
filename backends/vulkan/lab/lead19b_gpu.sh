#!/bin/bash
# The lead's second call (nineteenth session): vk19b's decode attention split at 2 / 8 / 16
# parts against the default 4 on the 8B (engine tg128, interleaved), after the attention lab's
# bit checks of those part counts against HEAD df38488's unsplit kernel on the H100. Carry
# .dev/bundle19f.tar.xz, .dev/old19.tar.xz and .gl; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b
tar xJf .dev/bundle19f.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p /tmp/x && tar xJf .dev/old19.tar.xz -C /tmp/x
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
LABARGS="--reps 50 --keys 16,144,512 --max-keys 1024 --batch 128 --copies 8"
TESSERA_VULKAN_PLUGIN=/tmp/x/libtessera_backend_vulkan.so timeout 60 $B/bin/vulkan_attn_lab $LABARGS \
  --dump /tmp/attn_old.bin > $OUT/attn_old.log 2>&1
echo "old rc=$?"; grep "us/call" $OUT/attn_old.log | grep -v "^ *$" | sed 's/^/  old /'
for parts in 8 2 16; do
  env TESSERA_VULKAN_ATTN_SPLIT_GROUPS=100000 TESSERA_VULKAN_ATTN_PARTS=$parts TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so \
    timeout 60 $B/bin/vulkan_attn_lab $LABARGS --check /tmp/attn_old.bin > $OUT/attn_p$parts.log 2>&1
  echo "parts $parts rc=$?"; grep -E "us/call|same bits" $OUT/attn_p$parts.log | sed "s/^/  p$parts /"
done
echo "  [t=$(( $(date +%s) - T0 )) s]"
i=0; while [ ! -f /tmp/llama-3.1-8b.done ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
vb() { local parts=$1; shift
  env TESSERA_VULKAN_ATTN_PARTS=$parts timeout 60 $B/bin/engine bench --backend vulkan /tmp/llama-3.1-8b "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/  parts $parts /"; }
for parts in 4 8 16 2 8 4; do left && vb $parts -p 16 -n 128 -r 2; done
left && timeout 60 $B/bin/engine bench --backend cuda /tmp/llama-3.1-8b -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg" | sed 's/^/  cuda /'
echo "total $(( $(date +%s) - T0 )) s"
# Call 3 (the same warm machine, 51 s) ran only the engine rounds, parts 2 4 4 2 2 4:
#   for p in 2 4 4 2 2 4; do env TESSERA_VULKAN_ATTN_PARTS=$p engine bench --backend vulkan \
#     /tmp/llama-3.1-8b -p 16 -n 128 -r 2; done      (results/lead19/console_call3.log)
