#!/bin/bash
# wide35_gpu.sh BUNDLE_TAR (thirty-fifth session, gemm35): the one-piece 128 x 256 prefill tile on
# the 1B's K = 2048 / 8192 shapes (TESSERA_CUDA_GEMM_WIDE_MINK=2048, this tree's H200 default)
# against the rule before (4096), in the engine's bf16 mode, interleaved; the default dispatch's
# bit checks under both; greedy md5 in bf16 mode over a ~1.5k-token prompt under both. The tar
# holds bundle/ with bin/cuda_gemm_lab. Logs under $OUT.
T=${1:?bundle tar}
W=/tmp/w35; mkdir -p $W; tar -C $W -xJf "$T"; B=$W/bundle; P=$B/lib/tessera/backends
export LD_LIBRARY_PATH=$B/lib
. backends/cuda/lab/lab_common.sh
make_ckpts llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
for k in 2048 4096; do
  TESSERA_CUDA_GEMM_WIDE_MINK=$k TESSERA_LAB_TERMS=1 timeout 200 $B/bin/cuda_gemm_lab --wgmma-only \
    --wg-from=99 --default-only > $OUT/default_k$k.log 2>&1
  echo "default dispatch checks MINK=$k rc=$? ok=$(grep -c ' ok$' $OUT/default_k$k.log) FAILED=$(grep -c FAIL $OUT/default_k$k.log) $(grep -E '^summary' $OUT/default_k$k.log)"
done
run() {  # mink model args...
  local k=$1 m=$2; shift 2
  TESSERA_CUDA_GEMM_WIDE_MINK=$k TESSERA_BACKEND_PATH=$P timeout 200 $B/bin/engine bench /tmp/$m --backend cuda \
    --backend-opt cuda.matmul_precision=bf16 "$@" 2>&1 | grep -E '^\| (pp|tg)|rror' | awk -F'|' '{printf "%s %s  ", $2, $3}'
}
wait_ckpt llama-3.2-1b
for r in 1 2 3; do
  for k in 2048 4096; do echo "1B bf16 MINK=$k: $(run $k llama-3.2-1b -p 2048 -n 0 -r 2) $(run $k llama-3.2-1b -p 512 -n 0 -r 2)"; done
done
PROMPT=$(python3 -c "print(' '.join('t%d' % (i % 50) for i in range(1500)))")
for m in llama-3.2-1b llama-3.1-8b; do
  wait_ckpt $m
  for k in 2048 4096; do
    echo "$m bf16 MINK=$k md5: $(TESSERA_CUDA_GEMM_WIDE_MINK=$k TESSERA_BACKEND_PATH=$P timeout 120 $B/bin/engine run /tmp/$m --backend cuda --backend-opt cuda.matmul_precision=bf16 -n 32 --temperature 0 "$PROMPT" 2>/dev/null | md5sum)"
  done
done
