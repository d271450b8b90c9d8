#!/bin/bash
# bench/ref_check.py on the GPU machine, from the repo root: BUNDLE is a relocatable bundle
# (ci/bundle.sh, plus bin/ref_logprobs) or a .tar.xz of one (top folder bundle/); carry .gl
# (Debian's glvnd debs: the NVIDIA Vulkan driver needs them). Usage:
#   SHAPES=a,b BACKENDS=cuda,vulkan,cpu bash bench/ref_check_gpu.sh BUNDLE
# Results in $OUT/ref_check.jsonl.
set -u
B=$1
if [ "${B%.tar.xz}" != "$B" ]; then
  mkdir -p /tmp/refb && tar -xJf "$B" -C /tmp/refb && B=/tmp/refb/bundle
fi
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$B/lib
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if [[ ${BACKENDS:-cuda,vulkan,cpu} == *vulkan* ]]; then
  for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done
  ldconfig
  "$B/bin/engine" devices 2>&1 | grep -q "vulkan:0" ||
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  "$B/bin/engine" devices 2>&1 | grep -E "^(cuda|vulkan)" | head -4
fi
python3 bench/ref_check.py --bundle "$B" --out "$OUT" \
  --shapes "${SHAPES:-qwen2.5-0.5b,llama-3.2-1b,llama-3.1-8b}" --backends "${BACKENDS:-cuda,vulkan,cpu}" \
  ${REF_ARGS:-}
