#!/bin/bash
# cu29-ring, call 13: slots a consumer (TESSERA_CUDA_GEMV_RING_SLOTS 1 / 2 / 3): bits, lab, tg128.
# Bundle and carry as ring29_gpu.sh (cuda_gemv_lab inside).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in llama-3.1-8b llama-3.2-1b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r29/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
echo "=== lab --quick RING=31 SLOTS=2, 3 t=$(el)"
for d in 2 3; do
  TESSERA_CUDA_GEMV_RING_SLOTS=$d TESSERA_CUDA_GEMV_RING=31 GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk_$d.log 2>&1
  echo "SLOTS=$d rc=$? shapes $(grep -c '^checked' $OUT/chk_$d.log) same-bits $(grep -c 'same bits' $OUT/chk_$d.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk_$d.log); $(grep -E '^checks' $OUT/chk_$d.log)"
done
echo "=== lab --dec17 t=$(el)"
L=8B-o-res,8B-norm-qkv,8B-norm-gate-up-swiglu,1B-o-res,1B-norm-qkv,1B-norm-gate-up
for d in 1 2 3 1 2 3; do
  TESSERA_CUDA_GEMV_RING_SLOTS=$d GEMV_LAB_TAG=SLOTS=$d GEMV_LAB_DEC17_ONLY=$L timeout 60 $LAB --dec17 2>&1 | grep -E "^dec17|rror"
done
wait_ckpt() { for i in $(seq 1 150); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
for s in llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s md5:"
  for d in 1 2 3; do
    TESSERA_CUDA_GEMV_RING_SLOTS=$d timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
    line="$line SLOTS=$d rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
  done; echo "$line"
done
eb() { echo "  $1 SLOTS=$2 $(TESSERA_CUDA_GEMV_RING_SLOTS=$2 timeout 60 $B/bin/engine bench /tmp/$1 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for d in 1 2 3 1 2 3; do eb llama-3.1-8b $d; done
for d in 1 2 3 1 2 3; do eb llama-3.2-1b $d; done
echo "total $(el) s"
