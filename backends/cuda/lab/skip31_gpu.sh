#!/bin/bash
# Thirty-first session: where a 1B / 0.5B batch-1 decode token goes now (TESSERA_CUDA_LAB_SKIP,
# WRONG OUTPUTS, time only: each launch kind left out of the captured graph in turn), with HEAD's
# CUDA plugin; plus the per-node profile (TESSERA_CUDA_PROFILE=1) (serialized, graphs off).
#   run(command="bash backends/cuda/lab/skip31_gpu.sh", carry=[".dev/s31"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
source backends/cuda/lab/lab_common.sh
make_ckpts ${CKPTS-llama-3.2-1b qwen2.5-0.5b}
tar xJf .dev/s31/b.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib
sk() { echo "  $1 skip [$2] $(TESSERA_CUDA_LAB_SKIP="$2" timeout 60 $B/bin/engine bench /tmp/$1 --backend cuda -p 16 -n 128 -r 1 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s", $2, $4}') t=$(el)"; }
run_skips() { local s=$1; shift; wait_ckpt $s; echo "=== $s t=$(el)"; sk $s none-xyz; for k in "$@"; do sk $s "$k"; done; sk $s none-xyz
  TESSERA_CUDA_PROFILE=1 timeout 60 $B/bin/engine bench /tmp/$s --backend cuda -p 16 -n 32 -r 1 > $OUT/prof_$s.txt 2>&1; grep -E "us|calls" $OUT/prof_$s.txt | head -40; }
run_skips llama-3.2-1b "MATMUL x3" "PAGED_ATTENTION" "N=2048 K=2048" "MATMUL x2" "K=8192" "N=128256" "ROPE" "KV_WRITE" "SWIGLU" "GET_ROWS" "ARGMAX"
run_skips qwen2.5-0.5b "MATMUL x3" "PAGED_ATTENTION" "N=896 K=896" "MATMUL x2" "K=4864" "N=151936" "ROPE" "KV_WRITE" "SWIGLU" "GET_ROWS" "ARGMAX"
echo "total $(el) s"
