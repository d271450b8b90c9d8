#!/bin/bash
# The lead's first call of the twenty-fourth session on the H200: HEAD 120da52's bundle
# (.dev/bundle24.tar.xz) alone, the default-off decode knobs re-measured on this card (each was
# turned off on the H100, where the kernels were bandwidth-bound; on the H200 the small models'
# layers are latency chains), and tg128 with only the argmax downloaded (--greedy) beside the
# full logits row (the step boundary's share). Interleaved base / knob / knob / base, one card.
# No step starts past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-170}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
rm -rf /tmp/bundle && tar xJf .dev/bundle24.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done; }
run1() {  # run1 LABEL CKPT ENV... : one tg128 row (-r 2)
  local l=$1 c=$2; shift 2
  left || return 0
  env X_NONE=1 "$@" timeout 90 $B/bin/engine bench --backend cuda $c -p 16 -n 128 -r 2 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/  $l /"
}
rung() {  # greedy tg128
  local l=$1 c=$2; shift 2
  left || return 0
  env X_NONE=1 "$@" timeout 90 $B/bin/engine bench --backend cuda $c -p 16 -n 128 -r 2 --greedy 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/  $l /"
}
for s in qwen2.5-0.5b llama-3.2-1b; do
  wait_ck $s; echo "=== $s $(t)"
  C=/tmp/$s
  run1 base $C; run1 ropekv $C TESSERA_CUDA_FUSE_ROPEKV=1; run1 swepi $C TESSERA_CUDA_FUSE_SWIGLU_EPI=1
  rung greedy $C; run1 swdown $C TESSERA_CUDA_FUSE_SWIGLU=1
  run1 swdown $C TESSERA_CUDA_FUSE_SWIGLU=1; rung greedy $C
  run1 swepi $C TESSERA_CUDA_FUSE_SWIGLU_EPI=1; run1 ropekv $C TESSERA_CUDA_FUSE_ROPEKV=1; run1 base $C
done
wait_ck llama-3.1-8b; echo "=== 8B $(t)"
C=/tmp/llama-3.1-8b
run1 base $C; run1 pbal $C TESSERA_CUDA_GEMV_PBAL=1; run1 swepi $C TESSERA_CUDA_FUSE_SWIGLU_EPI=1
rung greedy $C; run1 swepi $C TESSERA_CUDA_FUSE_SWIGLU_EPI=1; run1 pbal $C TESSERA_CUDA_GEMV_PBAL=1; run1 base $C
echo "total $(t)"
