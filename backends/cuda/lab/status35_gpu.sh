#!/bin/bash
# status35_gpu.sh BUNDLE_TAR (thirty-fifth session): the targets' current numbers on the GPU
# machine for the closing table: CUDA tg128 (batch-1) of the three shapes, CUDA pp2048 with the
# decode-batch tiles' MODE 8 twins on / off (TESSERA_CUDA_GEMM_UNCOND=1 / 0: narrow prefill
# GEMMs take the split-K tile too), and Vulkan 8B tg128 beside CUDA's, interleaved. The tar holds
# bundle/ (ci/bundle.sh --gpu-tests, with the Vulkan plugin and loader). Logs under $OUT.
T=${1:?bundle tar}
W=/tmp/st35; mkdir -p $W; tar -C $W -xJf "$T"; B=$W/bundle; P=$B/lib/tessera/backends
export LD_LIBRARY_PATH=$B/lib
. backends/cuda/lab/lab_common.sh
make_ckpts ${MODELS-qwen2.5-0.5b llama-3.2-1b} llama-3.1-8b
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
run() {  # backend model args... (env before the call)
  local be=$1 m=$2; shift 2
  TESSERA_BACKEND_PATH=$P timeout 200 $B/bin/engine bench /tmp/$m --backend $be "$@" 2>&1 |
    grep -E '^\| (pp|tg)|rror' | awk -F'|' '{printf "%s %s  ", $2, $3}'
}
# The machine has NVIDIA's Vulkan driver but not the glvnd libraries it needs (carry .gl, the
# Debian packages; the Vulkan lab scripts do the same) nor a loader config where Debian's loader
# looks.
if [ -d .gl ]; then for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig; fi
[ -n "${VK_DRIVER_FILES:-}" ] || { TESSERA_BACKEND_PATH=$P $B/bin/engine devices 2>&1 | grep -q "vulkan:0" ||
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; }
for m in ${MODELS-qwen2.5-0.5b llama-3.2-1b llama-3.1-8b}; do
  wait_ckpt $m
  echo "$m cuda tg128: $(run cuda $m -p 16 -n 128 -r 2)"
  for u in 1 0 0 1; do echo "$m cuda pp2048 UNCOND=$u: $(TESSERA_CUDA_GEMM_UNCOND=$u run cuda $m -p 2048 -n 0 -r 2)"; done
done
wait_ckpt llama-3.1-8b
for r in $(seq 1 ${VK_ROUNDS:-2}); do
  echo "llama-3.1-8b vulkan tg128: $(run vulkan llama-3.1-8b -p 16 -n 128 -r 2)"
  echo "llama-3.1-8b cuda tg128: $(run cuda llama-3.1-8b -p 16 -n 128 -r 2)"
done
