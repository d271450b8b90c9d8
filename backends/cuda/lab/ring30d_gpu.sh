#!/bin/bash
# cu30-prod, call 4: the ring's per-unit work off the slot's refill path (producers work out the
# next unit's coordinates after an issue; consumers step task / chunk without a division) and 4
# producer warps (TESSERA_CUDA_GEMV_RING_PROD=4), against HEAD's lab (bin/cuda_gemv_lab_head) and
# HEAD's plugin (old/cuda_old.so): lab lines, bits, engine tg128 interleaved, md5.
# Bundle .dev/r30/slim.tar.xz (xz -9: the four CUDA binaries share most of their bytes, 17 MB).
#   run(command="bash backends/cuda/lab/ring30d_gpu.sh", carry=[".dev/r30"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in llama-3.2-1b llama-3.1-8b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r30/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
CU=$P/libtessera_backend_cuda.so; cp $CU /tmp/cuda_new.so; cp $B/old/cuda_old.so /tmp/cuda_old.so
echo "=== (1) lab --dec17 t=$(el)"
L8=8B-o-res,8B-norm-qkv,8B-norm-gate-up-swiglu,8B-norm-head,1B-o-res,1B-norm-gate-up,1B-norm-qkv
for r in 1 2; do
  GEMV_LAB_TAG=head GEMV_LAB_DEC17_ONLY=$L8 timeout 60 $B/bin/cuda_gemv_lab_head --dec17 2>&1 | grep -E "^dec17|rror"
  for pr in 2 4; do
    TESSERA_CUDA_GEMV_RING_PROD=$pr GEMV_LAB_TAG=P$pr GEMV_LAB_DEC17_ONLY=$L8 timeout 60 $LAB --dec17 2>&1 | grep -E "^dec17|rror"
  done
done
echo "=== (2) lab --quick t=$(el)"
for pr in 2 4; do
  TESSERA_CUDA_GEMV_RING_PROD=$pr GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk_p$pr.log 2>&1
  echo "PROD=$pr rc=$? shapes $(grep -c '^checked' $OUT/chk_p$pr.log) same-bits $(grep -c 'same bits' $OUT/chk_p$pr.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk_p$pr.log); $(grep -E '^checks' $OUT/chk_p$pr.log) t=$(el)"
done
wait_ckpt() { for i in $(seq 1 200); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
echo "=== (3) tg128 t=$(el)"
eb() { local s=$1 side=$2 pr=2
  case $side in old) cp /tmp/cuda_old.so $CU;; new) cp /tmp/cuda_new.so $CU;; p4) cp /tmp/cuda_new.so $CU; pr=4;; esac
  echo "  $s $side $(TESSERA_CUDA_GEMV_RING_PROD=$pr timeout 60 $B/bin/engine bench /tmp/$s --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
wait_ckpt llama-3.2-1b
for side in old new p4 old new p4; do eb llama-3.2-1b $side; done
wait_ckpt llama-3.1-8b
for side in old new p4 p4 new old; do eb llama-3.1-8b $side; done
cp /tmp/cuda_new.so $CU
echo "=== (4) md5 t=$(el)"
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
for s in llama-3.2-1b llama-3.1-8b; do line="$s:"
  for pr in 2 4; do
    TESSERA_CUDA_GEMV_RING_PROD=$pr timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
    line="$line P$pr rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
  done; echo "$line"
done
echo "total $(el) s"
