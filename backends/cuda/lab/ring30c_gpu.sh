#!/bin/bash
# cu30-ring, call 3: the whole-chunk mma chain without the K bound test (call 2's build: the 8B /
# 1B ring launches ~7% slower than HEAD's), against a lab built from HEAD's kernels
# (bin/cuda_gemv_lab_head) on the same lines; the 0.5B masks 55 (o + gate/up pair), 119 (+ head),
# 183 (+ down); FLAT auto / 0; bits; engine tg128 (this tree only: no HEAD plugin in this bundle).
#   run(command="bash backends/cuda/lab/ring30c_gpu.sh", carry=[".dev/r30"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r30/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
CU=$P/libtessera_backend_cuda.so
echo "=== (1) lab --dec17: head's lab vs this tree's t=$(el)"
L8=8B-o-res,8B-norm-qkv,8B-norm-gate-up-swiglu,1B-o-res,1B-norm-gate-up,05B-o-res,05B-norm-gate-up-swiglu,05B-down-res,05B-norm-head
for r in 1 2; do
  for lab in cuda_gemv_lab_head cuda_gemv_lab; do
    GEMV_LAB_TAG="$lab" GEMV_LAB_DEC17_ONLY=$L8 timeout 60 $B/bin/$lab --dec17 2>&1 | grep -E "^dec17|rror"
  done
done
for m in "55 -1" "55 0" "119 0" "183 0" "183 -1"; do
  set -- $m
  TESSERA_CUDA_GEMV_RING=$1 TESSERA_CUDA_GEMV_RING_FLAT=$2 GEMV_LAB_TAG="R$1F$2" GEMV_LAB_DEC17_ONLY=05B-o-res,05B-norm-gate-up-swiglu,05B-down-res,05B-norm-head timeout 60 $LAB --dec17 2>&1 | grep -E "^dec17|rror"
done
echo "=== (2) lab --quick t=$(el)"
for m in "255 1" "255 -1"; do
  set -- $m
  TESSERA_CUDA_GEMV_RING=$1 TESSERA_CUDA_GEMV_RING_FLAT=$2 GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk_$1_$2.log 2>&1
  echo "RING=$1 FLAT=$2 rc=$? shapes $(grep -c '^checked' $OUT/chk_$1_$2.log) same-bits $(grep -c 'same bits' $OUT/chk_$1_$2.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk_$1_$2.log); $(grep -E '^checks' $OUT/chk_$1_$2.log) t=$(el)"
done
wait_ckpt() { for i in $(seq 1 200); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
echo "=== (3) tg128 t=$(el)"
eb() { echo "  $1 R=$2 F=$3 $(TESSERA_CUDA_GEMV_RING=$2 TESSERA_CUDA_GEMV_RING_FLAT=$3 timeout 60 $B/bin/engine bench /tmp/$1 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
wait_ckpt qwen2.5-0.5b
for m in "-1 -1" "55 0" "55 -1" "183 0" "-1 -1" "55 0" "55 -1" "183 0"; do eb qwen2.5-0.5b $m; done
wait_ckpt llama-3.2-1b
for m in "-1 -1" "0 -1" "-1 -1" "0 -1"; do eb llama-3.2-1b $m; done
wait_ckpt llama-3.1-8b
for m in "-1 -1" "0 -1" "-1 -1" "0 -1"; do eb llama-3.1-8b $m; done
echo "total $(el) s"
