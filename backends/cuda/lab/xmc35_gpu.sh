#!/bin/bash
# xmc35_gpu.sh BUNDLE_TAR (thirty-fifth session, cu35-xmc): the decode-batch split-K tiles in
# 2-CTA clusters along the weight rows sharing the x planes by TMA multicast
# (TESSERA_CUDA_GEMM_UNCOND=3: the split-K tiles and the 8B's wide gate/up group) against
# UNCOND=1: the lab's decode-batch checks and times (--smallm-quick, --group), then
# tg64x64 greedy interleaved and the 8B greedy md5. The tar holds bundle/ with bin/cuda_gemm_lab,
# built from the tree with results/xmc35/xmc_not_measured.diff applied (`git apply`; built and
# compiled clean in the thirty-fifth session, never run: the session's device time ran out).
T=${1:?bundle tar}
W=/tmp/xmc; mkdir -p $W; tar -C $W -xJf "$T"; B=$W/bundle; P=$B/lib/tessera/backends
export LD_LIBRARY_PATH=$B/lib
. backends/cuda/lab/lab_common.sh
make_ckpts llama-3.1-8b llama-3.2-1b
for u in 3 1; do
  TESSERA_CUDA_GEMM_UNCOND=$u TESSERA_LAB_TERMS=3 TESSERA_LAB_M=64 timeout 60 $B/bin/cuda_gemm_lab --smallm-quick > $OUT/lab_u$u.log 2>&1
  echo "lab UNCOND=$u rc=$? $(grep -E '^summary' $OUT/lab_u$u.log) FAILED=$(grep -c FAIL $OUT/lab_u$u.log)"
  grep -E "^smallm 8B|^smallm 1B.down" $OUT/lab_u$u.log | sed -E 's/ tma128x128=.*//'
  # The wide gate/up group (XMC twin at UNCOND=3) and the down's members path, bits and times.
  TESSERA_CUDA_GEMM_UNCOND=$u TESSERA_LAB_TERMS=3 TESSERA_LAB_SHAPES=8B.gateup,8B.down timeout 90 \
    $B/bin/cuda_gemm_lab --group > $OUT/group_u$u.log 2>&1
  echo "group UNCOND=$u rc=$? ok=$(grep -c ' ok$' $OUT/group_u$u.log) $(grep -E '^summary' $OUT/group_u$u.log)"
  tr '\n' ' ' < $OUT/group_u$u.log | grep -oE "group 8B[^ ]+_M64[^ ]* fits|members=[0-9.]+us|members_grouped=[0-9.]+us" | head -8 | paste -sd' '
done
x64() {
  TESSERA_CUDA_GEMM_UNCOND=$1 TESSERA_BACKEND_PATH=$P timeout 60 $B/bin/engine bench /tmp/$2 --backend cuda -p 0 -n 64 \
    --parallel 64 --greedy -r 1 2>&1 | grep -E '^\| tg|rror' | awk -F'|' '{printf "%s", $3}'
}
for m in llama-3.1-8b llama-3.2-1b; do
  wait_ckpt $m
  for u in 3 1 3 1; do echo "x64 $m UNCOND=$u: $(x64 $u $m)"; done
done
PROMPT=$(python3 -c "print(' '.join('t%d' % (i % 50) for i in range(36)))")
for u in 3 1; do
  echo "8B UNCOND=$u md5: $(TESSERA_CUDA_GEMM_UNCOND=$u TESSERA_BACKEND_PATH=$P timeout 60 $B/bin/engine run /tmp/llama-3.1-8b --backend cuda -n 48 --temperature 0 "$PROMPT" 2>/dev/null | md5sum)"
done
