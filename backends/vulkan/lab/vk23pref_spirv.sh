#!/bin/bash
# vk23-pref: static counts of the decode_*_pref modules' code per PREF_MODE, against the default
# module, from glslc's SPIR-V (no GPU; the driver's register counts need the H200:
# vk23pref_gpu.sh's PIPELINE_STATS lines). Each mode is compiled as CMakeLists.txt does (glslc
# -O) with the specialization constant replaced by a plain constant (so glslc folds the other
# modes away). Columns: 16-byte weight loads (OpLoad of uvec4 from memory, Aligned 16; static: the step loop is not
# unrolled, every inlined DecodeRowsSkewed counts), shuffles, FMAs, SPIR-V lines, function-scope
# arrays (OpVariable Function; the default module has the same ones, scalarized by the driver).
# Usage: backends/vulkan/lab/vk23pref_spirv.sh [KIND...]  (KIND: skew, norm, pair; bf16)
set -eu
S=$(cd "$(dirname "$0")/../shaders" && pwd)
W=$(mktemp -d); trap 'rm -rf $W' EXIT
declare -A DEFS=([skew]="-DDECODE=3" [norm]="-DDECODE=3 -DNORM=1" [pair]="-DDECODE=3 -DNORM=1 -DPAIRED=1")
stats() {
  echo "$(grep -c 'OpLoad %v4uint .* Aligned 16' $1) $(grep -c 'OpGroupNonUniformShuffle ' $1) $(grep -c 'Fma' $1)" \
    "$(wc -l < $1) $(grep -c 'OpVariable %_ptr_Function' $1)"
}
for kind in ${@:-skew norm pair}; do
  echo "== $kind (bf16): mode  w16-loads shuffles fma spirv-lines fn-arrays"
  # shellcheck disable=SC2086
  glslc --target-env=vulkan1.2 -O -S -fshader-stage=compute -I $S -DWDT=2 ${DEFS[$kind]} \
    -o $W/def.s $S/matmul.comp
  echo "  default module  $(stats $W/def.s)"
  for m in 0 1 9 2 10 4 5 13 6 14; do
    sed "s/layout(constant_id = 8) const int PREF_MODE = 1;/const int PREF_MODE = $m;/" \
      $S/matmul.comp > $W/m.comp
    # shellcheck disable=SC2086
    glslc --target-env=vulkan1.2 -O -S -fshader-stage=compute -I $S -DWDT=2 ${DEFS[$kind]} \
      -DPREF=1 -o $W/m$m.s $W/m.comp
    echo "  PREF_MODE $m  $(stats $W/m$m.s)"
  done
done
