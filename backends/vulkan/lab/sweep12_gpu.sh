#!/bin/bash
# The lead's knob sweep of the twelfth session (8B decode, Vulkan, same bits by construction: the
# knobs pick fusions / kernels over the same canonical order). From the repo root, carrying
# .dev/bundle.tar.gz and .gl; each knob setting interleaved with the defaults, two rounds.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-300}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
rm -f /tmp/*.done; tar xzf .dev/bundle.tar.gz -C .dev
B=.dev/bundle; export LD_LIBRARY_PATH=$PWD/$B/lib; P=$PWD/$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
python3 bench/make_checkpoint.py --shape llama-3.1-8b --out /tmp/m > /dev/null 2>&1
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
echo "checkpoint $(( $(date +%s) - T0 )) s"
for r in 1 2; do
  for k in NONE=1 ${KNOBS:-TESSERA_VULKAN_FUSE_SWIGLU=0 TESSERA_VULKAN_FUSE_NORM=0 TESSERA_VULKAN_FUSE_PAIRS=0 TESSERA_VULKAN_DECODE_SKEW_PLAIN=0}; do
    left || break
    echo "=== r$r $k: $(env $k timeout 60 $B/bin/engine bench --backend vulkan /tmp/m -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg128|rror' | awk -F'|' '{print $3}')"
  done
done
echo "total $(( $(date +%s) - T0 )) s"
