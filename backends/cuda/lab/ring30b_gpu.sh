#!/bin/bash
# cu30-ring, call 2: after the 32-bit unit indices (call 1's 64-bit division a unit had cost the
# 8B / 1B ring kernels their cu29 gain): lab bits, --dec17 lines, engine tg128 against HEAD's plugin
# (old) interleaved, mask 55 (the 0.5B on the ring) and FLAT=1 (every task cut evenly), md5.
#   run(command="bash backends/cuda/lab/ring30b_gpu.sh", carry=[".dev/r30"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r30/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
CU=$P/libtessera_backend_cuda.so; cp $CU /tmp/cuda_new.so; cp $B/old/cuda_old.so /tmp/cuda_old.so
echo "=== (1) lab --quick t=$(el)"
for m in "63 1" "55 -1"; do
  set -- $m
  TESSERA_CUDA_GEMV_RING=$1 TESSERA_CUDA_GEMV_RING_FLAT=$2 GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk_$1_$2.log 2>&1
  echo "RING=$1 FLAT=$2 rc=$? shapes $(grep -c '^checked' $OUT/chk_$1_$2.log) same-bits $(grep -c 'same bits' $OUT/chk_$1_$2.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk_$1_$2.log); $(grep -E '^checks' $OUT/chk_$1_$2.log) t=$(el)"
done
echo "=== (2) lab --dec17 t=$(el)"
L05=05B-o-res,05B-down-res,05B-norm-gate-up-swiglu,05B-norm-qkv
L8=8B-o-res,8B-norm-qkv,8B-norm-gate-up-swiglu,1B-o-res,1B-norm-qkv,8B-norm-head
for m in "23 -1" "55 0" "55 -1" "23 1" "23 -1" "55 0"; do
  set -- $m
  TESSERA_CUDA_GEMV_RING=$1 TESSERA_CUDA_GEMV_RING_FLAT=$2 GEMV_LAB_TAG="R$1F$2" GEMV_LAB_DEC17_ONLY=$L05,$L8 timeout 60 $LAB --dec17 2>&1 | grep -E "^dec17|rror"
done
wait_ckpt() { for i in $(seq 1 200); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== (3) tg128 t=$(el)"
# side: old | new (defaults) | new:RING:FLAT
eb() { local s=$1 side=$2 R=-1 F=-1
  case $side in old) cp /tmp/cuda_old.so $CU;; *) cp /tmp/cuda_new.so $CU; IFS=: read -r _ R F _x <<< "$side:-1:-1";; esac
  [ "$R" = "" ] && R=-1; [ "$F" = "" ] && F=-1
  echo "  $s $side $(TESSERA_CUDA_GEMV_RING=$R TESSERA_CUDA_GEMV_RING_FLAT=$F timeout 60 $B/bin/engine bench /tmp/$s --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
wait_ckpt qwen2.5-0.5b
for side in old new new:55 old new new:55:0; do eb qwen2.5-0.5b $side; done
wait_ckpt llama-3.2-1b
for side in old new new:-1:1 old new new:-1:1; do eb llama-3.2-1b $side; done
wait_ckpt llama-3.1-8b
for side in old new new:-1:1 old new new:-1:1; do eb llama-3.1-8b $side; done
cp /tmp/cuda_new.so $CU
echo "=== (4) md5 t=$(el)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do line="$s:"
  for m in "-1 -1" "55 1"; do set -- $m
    TESSERA_CUDA_GEMV_RING=$1 TESSERA_CUDA_GEMV_RING_FLAT=$2 timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
    line="$line R=$1,F=$2 rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
  done; echo "$line"
done
echo "total $(el) s"
