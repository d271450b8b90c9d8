#!/bin/bash
# The lead's second call of the twenty-first session: 8B tg128 on CUDA old / new, three rounds
# (lead21_gpu.sh read -0.5%: both new runs under both old ones), and Vulkan 8B pp512 old / new
# (prefill runs the generic rope module vk21-share rewrote). Carries .dev/bundle21n.tar.xz,
# .dev/old21.tar.xz and .gl, as lead21_gpu.sh.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-200}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b
tar xJf ${BUNDLE:-.dev/bundle21n.tar.xz} -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
O=/tmp/old; rm -rf $O && cp -r $B $O && mkdir -p /tmp/x && tar xJf ${OLD:-.dev/old21.tar.xz} -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so /tmp/x/libtessera_backend_vulkan.so $O/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
eng() { local d=$B; [ $1 = old ] && d=$O; shift; LD_LIBRARY_PATH=$d/lib timeout 120 $d/bin/engine "$@"; }
i=0; while [ ! -f /tmp/llama-3.1-8b.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done
echo "=== 8B CUDA tg128 old new new old old new $(t)"
for side in old new new old old new; do
  left && eng $side bench --backend cuda /tmp/llama-3.1-8b -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | sed "s/^/  $side /"
done
echo "=== 8B Vulkan pp512 old new new old $(t)"
for side in old new new old; do
  left && eng $side bench --backend vulkan /tmp/llama-3.1-8b -p 512 -n 0 -r 2 2>&1 | grep -E "\| pp|rror" | sed "s/^/  $side /"
done
echo "total $(t)"
