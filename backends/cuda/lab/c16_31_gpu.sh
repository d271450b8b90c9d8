#!/bin/bash
# Thirty-first session (cu31-c16): 16 consumer warps and slots in the TMA ring
# (TESSERA_CUDA_GEMV_RING_C16 = mask of launch kinds) against 8: lab bits (--rope24, --quick),
# --dec17 lines, md5s and tg128 interleaved (8B, 1B).
#   run(command="bash backends/cuda/lab/c16_31_gpu.sh", carry=[".dev/s31/b.tar.xz", ".dev/s31/p4.tar.xz"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
source backends/cuda/lab/lab_common.sh
make_ckpts llama-3.2-1b llama-3.1-8b
tar xJf .dev/s31/b.tar.xz -C /tmp; tar xJf .dev/s31/p4.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=/tmp/p4/lab
cp /tmp/p4/cuda.so $P/libtessera_backend_cuda.so
M=${M:-63}
echo "=== (1) lab bits, C16=$M t=$(el)"
TESSERA_CUDA_GEMV_RING_C16=$M timeout 100 $LAB --rope24 > $OUT/rope24.log 2>&1; echo "rope24 rc=$?"
grep -E "^checked rope_epi .* form=-1|DIFFERENT|rror" $OUT/rope24.log | head -8
TESSERA_CUDA_GEMV_RING_C16=$M GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk.log 2>&1
echo "quick rc=$? shapes $(grep -c '^checked' $OUT/chk.log) same-bits $(grep -c 'same bits' $OUT/chk.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk.log); $(grep -E '^checks' $OUT/chk.log) t=$(el)"
echo "=== (2) lab --dec17 t=$(el)"
L=8B-o-res,8B-norm-qkv,8B-norm-gate-up-swiglu,8B-down-res,1B-norm-gate-up-swiglu,1B-down-res
for r in 1 2; do for c in 0 $M; do
  TESSERA_CUDA_GEMV_RING_C16=$c GEMV_LAB_TAG=C16=$c GEMV_LAB_DEC17_ONLY=$L timeout 60 $LAB --dec17 2>&1 | grep -E "^dec17|rror"
done; done
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== (3) md5 t=$(el)"
for s in llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for c in 0 $M; do
    TESSERA_CUDA_GEMV_RING_C16=$c timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
    line="$line C16=$c rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
  done; echo "$line"
done
echo "=== (4) tg128 t=$(el)"
eb() { echo "  $1 C16=$2 $(TESSERA_CUDA_GEMV_RING_C16=$2 timeout 60 $B/bin/engine bench /tmp/$1 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for c in 0 $M $M 0 0 $M; do eb llama-3.1-8b $c; done
for c in 0 $M $M 0; do eb llama-3.2-1b $c; done
echo "total $(el) s"
