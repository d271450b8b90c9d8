#!/bin/bash
# cu30-s2, call 7: two slots a consumer for the ring's small launches (TESSERA_CUDA_GEMV_RING_S2 =
# most units a block that take them), the 1B q/k/v on the ring instead of the ROPE + KV epilogue
# kernel (TESSERA_CUDA_FUSE_ROPE_EPI=0), and where an 8B token goes now (TESSERA_CUDA_LAB_SKIP).
# "old" = HEAD's plugin (f9ce59b's defaults = this build with the knobs unset).
# TESSERA_CUDA_GEMV_RING_S2 was removed after this call: re-run it with commit 6dbcd66's plugin and lab.
#   run(command="bash backends/cuda/lab/ring30g_gpu.sh", carry=[".dev/r30"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in llama-3.2-1b llama-3.1-8b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r30/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
CU=$P/libtessera_backend_cuda.so
echo "=== (1) lab --dec17 t=$(el)"
L8=8B-o-res,8B-norm-qkv,1B-o-res,1B-norm-qkv,1B-down-res,1B-norm-gate-up
for r in 1 2; do for s2 in 0 48 64; do
  TESSERA_CUDA_GEMV_RING_S2=$s2 GEMV_LAB_TAG=S2=$s2 GEMV_LAB_DEC17_ONLY=$L8 timeout 60 $LAB --dec17 2>&1 | grep -E "^dec17|rror"
done; done
echo "=== (2) lab --quick S2=100000 t=$(el)"
TESSERA_CUDA_GEMV_RING_S2=100000 GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk_s2.log 2>&1
echo "rc=$? shapes $(grep -c '^checked' $OUT/chk_s2.log) same-bits $(grep -c 'same bits' $OUT/chk_s2.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk_s2.log); $(grep -E '^checks' $OUT/chk_s2.log) t=$(el)"
wait_ckpt() { for i in $(seq 1 200); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
echo "=== (3) tg128 t=$(el)"
eb() { echo "  $1 S2=$2 ROPE_EPI=$3 $(TESSERA_CUDA_GEMV_RING_S2=$2 TESSERA_CUDA_FUSE_ROPE_EPI=$3 timeout 60 $B/bin/engine bench /tmp/$1 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
wait_ckpt llama-3.2-1b
for v in "0 1" "48 1" "0 0" "48 0" "0 1" "48 1" "0 0" "48 0"; do eb llama-3.2-1b $v; done
wait_ckpt llama-3.1-8b
for v in "0 1" "48 1" "64 1" "0 1" "48 1" "64 1"; do eb llama-3.1-8b $v; done
echo "=== (4) md5 t=$(el)"
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
for s in llama-3.2-1b llama-3.1-8b; do line="$s:"
  for v in "0 1" "64 0"; do set -- $v
    TESSERA_CUDA_GEMV_RING_S2=$1 TESSERA_CUDA_FUSE_ROPE_EPI=$2 timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
    line="$line S2=$1,RE=$2 rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
  done; echo "$line"
done
echo "=== (5) 8B launch skips (WRONG OUTPUTS; tg128 -r 1) t=$(el)"
sk() { echo "  skip [$1] $(TESSERA_CUDA_LAB_SKIP="$1" timeout 60 $B/bin/engine bench /tmp/llama-3.1-8b --backend cuda -p 16 -n 128 -r 1 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s", $2, $4}') t=$(el)"; }
sk "none-xyz"
for k in "MATMUL x2" "K=14336" "MATMUL x3" "N=4096 K=4096" "PAGED_ATTENTION" "ROPE" "KV_WRITE" "N=128256"; do sk "$k"; done
sk "none-xyz"
echo "total $(el) s"
