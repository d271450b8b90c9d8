#!/bin/bash
# cu30-ring, call 1: the TMA ring at any K % 64 == 0 (mask 32: the 0.5B's K = 896 / 4864) and the
# units spread evenly over the SMs (TESSERA_CUDA_GEMV_RING_FLAT): lab bits (RING=63 with FLAT
# auto and FLAT=1, which cuts tasks on every shape), --dec17 lines, md5, tg128 0.5B / 1B.
# Bundle .dev/r30/slim.tar.xz: as cu29-ring's (lab/NOTES.md "Re-run") with this tree's stripped
# CUDA plugin and cuda_gemv_lab, HEAD's plugin as old/cuda_old.so, no Vulkan.
#   run(command="bash backends/cuda/lab/ring30_gpu.sh", carry=[".dev/r30"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in qwen2.5-0.5b llama-3.2-1b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r30/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
CU=$P/libtessera_backend_cuda.so
echo "=== (1) lab --quick t=$(el)"
for m in "63 -1" "63 1" "23 1"; do
  set -- $m
  TESSERA_CUDA_GEMV_RING=$1 TESSERA_CUDA_GEMV_RING_FLAT=$2 GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk_$1_$2.log 2>&1
  echo "RING=$1 FLAT=$2 rc=$? shapes $(grep -c '^checked' $OUT/chk_$1_$2.log) same-bits $(grep -c 'same bits' $OUT/chk_$1_$2.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk_$1_$2.log); $(grep -E '^checks' $OUT/chk_$1_$2.log) t=$(el)"
done
echo "=== (2) lab --dec17 t=$(el)"
L05=05B-o-res,05B-down-res,05B-norm-gate-up,05B-norm-gate-up-swiglu,05B-norm-qkv,05B-norm-head
L8=8B-o-res,8B-norm-qkv,8B-norm-gate-up-swiglu,1B-o-res,1B-norm-qkv,1B-norm-gate-up
for m in "23 -1" "55 -1" "55 0" "23 -1" "55 -1"; do
  set -- $m
  TESSERA_CUDA_GEMV_RING=$1 TESSERA_CUDA_GEMV_RING_FLAT=$2 GEMV_LAB_TAG="R$1F$2" GEMV_LAB_DEC17_ONLY=$L05,$L8 timeout 60 $LAB --dec17 2>&1 | grep -E "^dec17|rror"
done
wait_ckpt() { for i in $(seq 1 150); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== (3) md5 t=$(el)"
for s in qwen2.5-0.5b llama-3.2-1b; do wait_ckpt $s; line="$s:"
  for m in 23 55 "55 1"; do
    set -- $m
    TESSERA_CUDA_GEMV_RING=$1 TESSERA_CUDA_GEMV_RING_FLAT=${2:--1} timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
    line="$line R=$m rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
  done; echo "$line"
done
echo "=== (4) tg128 t=$(el)"
eb() { echo "  $1 $2 $(TESSERA_CUDA_GEMV_RING=$2 timeout 60 $B/bin/engine bench /tmp/$1 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for m in 23 55 55 23 53 54 51 23 55; do eb qwen2.5-0.5b $m; done
for m in 23 55 55 23; do eb llama-3.2-1b $m; done
echo "total $(el) s"
