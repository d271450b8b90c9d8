#!/bin/bash
# vk24-qkv: static counts of the skew+norm+pair module's PREF twin per PREF_MODE (EARLY 32, CROSS
# 64, XSHARED 128) against the default module, from glslc's SPIR-V (no GPU; register counts need
# NVIDIA's driver: vk24qkv_gpu.sh's PIPELINE_STATS lines). As vk23pref_spirv.sh: each mode
# compiled as CMakeLists.txt does (glslc -O) with the specialization constant made a plain
# constant. Columns: 16-byte loads from memory (OpLoad %v4uint, Aligned 16: the weights, and x and
# the norm weight through LoadX4), access chains into a Workgroup (shared) vec4 array (sm_fold,
# XSHARED's sm_xn), control barriers, SPIR-V lines. Static counts: every inlined DecodeRowsSkewed
# counts once (XSHARED keeps the L2 path for K > 4096), the step loop is not unrolled.
# Needs results/vk24qkv/pair_pref_not_measured.diff applied (the modes are its matmul.comp's).
# Usage: backends/vulkan/lab/vk24qkv_spirv.sh [WDT] (2 = bf16)
set -eu
S=$(cd "$(dirname "$0")/../shaders" && pwd)
W=$(mktemp -d); trap 'rm -rf $W' EXIT
WDT=${1:-2}
stats() {
  local wg; wg=$(grep -E '^ *%[A-Za-z0-9_]+ = OpAccessChain %_ptr_Workgroup_v4float' $1 | wc -l)
  echo "$(grep -c 'OpLoad %v4uint .* Aligned 16' $1) $wg $(grep -c 'OpControlBarrier' $1)" \
    "$(wc -l < $1)"
}
echo "== pair (WDT $WDT): mode  16B-loads shared-v4-refs barriers spirv-lines"
glslc --target-env=vulkan1.2 -O -S -fshader-stage=compute -I $S -DWDT=$WDT -DDECODE=3 -DNORM=1 \
  -DPAIRED=1 -o $W/def.s $S/matmul.comp
echo "  default module  $(stats $W/def.s)"
for m in 0 32 64 96 128 160 224 4 228; do
  sed "s/layout(constant_id = 8) const int PREF_MODE = 1;/const int PREF_MODE = $m;/" \
    $S/matmul.comp > $W/m.comp
  glslc --target-env=vulkan1.2 -O -S -fshader-stage=compute -I $S -DWDT=$WDT -DDECODE=3 \
    -DNORM=1 -DPAIRED=1 -DPREF=1 -o $W/m$m.s $W/m.comp
  echo "  PREF_MODE $m  $(stats $W/m$m.s)"
done
