#!/bin/bash
# cpu-q32: is the 3 x 4 int8 tile's output-store cost 4K aliasing with the next tile's loads?
# Builds qgemm_drv with int8_store_ring_4k_not_kept.diff applied to copies of the kernel
# (Q32_X=B sends every tile's three row stores into a 1 KiB ring placed B bytes past the
# group scratch's 4K offset; unset = the real [M, N] output) and runs the variants interleaved.
# Usage: backends/cpu/lab/q32_store_ring.sh [ROUNDS]   (K, N from the environment: 896, 4864)
set -eu
D=$(mktemp -d)
mkdir -p "$D/backends/cpu"
cp backends/cpu/kernels_qgemm.cc backends/cpu/kernels_qmatmul.cc backends/cpu/kernels_qmatmul-inl.h "$D/backends/cpu/"
(cd "$D" && patch -s -p1 < "$OLDPWD/backends/cpu/lab/int8_store_ring_4k_not_kept.diff")
F="-O3 -std=c++20 -I$D -I. -Iplugins-api/include -Ibackends/common/include -Icore/include"
g++ $F -c -o "$D/kq.o" "$D/backends/cpu/kernels_qmatmul.cc"
g++ $F -o "$D/drv" backends/cpu/lab/qgemm_drv.cc "$D/kq.o" -lpthread
for r in $(seq 1 "${1:-4}"); do
  for x in real 0 1024 2304 2560 3072 stride0; do
    case $x in
      real) env -u Q32_X ACT_MISALIGN=0 nice -n -19 "$D/drv" 512 "${K:-896}" "${N:-4864}" 1 5 q8 1 ;;
      stride0) env -u Q32_X OUT_STRIDE0=1 ACT_MISALIGN=0 nice -n -19 "$D/drv" 512 "${K:-896}" "${N:-4864}" 1 5 q8 1 ;;
      *) Q32_X=$x ACT_MISALIGN=0 nice -n -19 "$D/drv" 512 "${K:-896}" "${N:-4864}" 1 5 q8 1 ;;
    esac 2>&1 | grep -o "wall best.*GOP/s)" | sed "s/^/$r $x: /"
  done
done
rm -rf "$D"
