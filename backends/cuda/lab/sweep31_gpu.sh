#!/bin/bash
# Thirty-first session: the small models' launch knobs re-measured on the H200 with the ring in
# place (HEAD's plugin; every knob keeps the bits): tg128 t/s, each knob run between base runs.
#   run(command="bash backends/cuda/lab/sweep31_gpu.sh", carry=[".dev/s31/b.tar.xz"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
source backends/cuda/lab/lab_common.sh
make_ckpts qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
tar xJf .dev/s31/b.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib
eb() { local s=$1; shift; echo "  $s [$*] $(env D=0 "$@" timeout 60 $B/bin/engine bench /tmp/$s --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
sweep() { local s=$1; shift; wait_ckpt $s; echo "=== $s t=$(el)"; eb $s; for k in "$@"; do eb $s $k; eb $s; done; }
sweep qwen2.5-0.5b TESSERA_CUDA_ATTN_TC_DEC=1 TESSERA_CUDA_ATTN_TC_DEC=5 TESSERA_CUDA_ATTN_TC_DEC=6 \
  TESSERA_CUDA_GEMV_HEAD=1 TESSERA_CUDA_GEMV_PREF=1 TESSERA_CUDA_GEMV_PREF=3 TESSERA_CUDA_GEMV_RMSPRE=0
sweep llama-3.2-1b TESSERA_CUDA_ATTN_TC_DEC=1 TESSERA_CUDA_ATTN_TC_DEC=5 TESSERA_CUDA_ATTN_TC_DEC=6 \
  TESSERA_CUDA_GEMV_HEAD=1 TESSERA_CUDA_GEMV_HEAD=3 TESSERA_CUDA_GEMV_RING=31 TESSERA_CUDA_GEMV_RMSPRE=0
sweep llama-3.1-8b TESSERA_CUDA_ATTN_TC_DEC=1 TESSERA_CUDA_ATTN_TC_DEC=5 TESSERA_CUDA_ATTN_TC_DEC=6
echo "total $(el) s"
