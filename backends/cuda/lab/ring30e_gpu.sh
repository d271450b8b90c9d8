#!/bin/bash
# cu30-prod, call 5: producers P = 4 / 8 (8: one a consumer, blocking waits) and S = 1 / 2 slots a
# consumer (compile-time instantiations), the 8B down on the ring (mask 8) with them; against
# HEAD's lab and plugin: lab lines, bits, engine tg128 interleaved, md5.
#   run(command="bash backends/cuda/lab/ring30e_gpu.sh", carry=[".dev/r30"])
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
L8=8B-o-res,8B-norm-qkv,8B-norm-gate-up-swiglu,8B-norm-head,1B-o-res,1B-norm-gate-up,8B-down-res,1B-down-res
for r in 1 2; do
  GEMV_LAB_TAG=head GEMV_LAB_DEC17_ONLY=$L8 timeout 60 $B/bin/cuda_gemv_lab_head --dec17 2>&1 | grep -E "^dec17|rror"
  for v in "4 1 23" "8 1 23" "4 2 23" "8 2 23" "4 1 31" "8 1 31"; do set -- $v
    TESSERA_CUDA_GEMV_RING=$3 TESSERA_CUDA_GEMV_RING_PROD=$1 TESSERA_CUDA_GEMV_RING_SLOTS=$2 GEMV_LAB_TAG=P$1S$2R$3 GEMV_LAB_DEC17_ONLY=$L8 timeout 60 $LAB --dec17 2>&1 | grep -E "^dec17|rror"
  done
done
echo "=== (2) lab --quick t=$(el)"
for v in "8 1 63" "4 2 63" "8 2 63"; do set -- $v
  TESSERA_CUDA_GEMV_RING=$3 TESSERA_CUDA_GEMV_RING_PROD=$1 TESSERA_CUDA_GEMV_RING_SLOTS=$2 GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk_p$1s$2.log 2>&1
  echo "P$1 S$2 RING=$3 rc=$? shapes $(grep -c '^checked' $OUT/chk_p$1s$2.log) same-bits $(grep -c 'same bits' $OUT/chk_p$1s$2.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk_p$1s$2.log); $(grep -E '^checks' $OUT/chk_p$1s$2.log) t=$(el)"
done
wait_ckpt() { for i in $(seq 1 200); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
echo "=== (3) tg128 t=$(el)"
eb() { local s=$1 side=$2
  if [ $side = old ]; then cp /tmp/cuda_old.so $CU; set -- 4 1 -1; else cp /tmp/cuda_new.so $CU; IFS=, read -r a b c <<< "$side"; set -- $a $b $c; fi
  echo "  $s $side $(TESSERA_CUDA_GEMV_RING=$3 TESSERA_CUDA_GEMV_RING_PROD=$1 TESSERA_CUDA_GEMV_RING_SLOTS=$2 timeout 60 $B/bin/engine bench /tmp/$s --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
wait_ckpt llama-3.2-1b
for side in old 4,1,-1 8,1,-1 4,2,-1 8,2,-1 old 8,2,-1 4,2,-1 8,1,-1 4,1,-1; do eb llama-3.2-1b $side; done
wait_ckpt llama-3.1-8b
for side in old 4,1,-1 8,1,-1 4,2,-1 8,2,-1 8,1,31 old 8,1,31 8,2,-1 4,2,-1 8,1,-1 4,1,-1; do eb llama-3.1-8b $side; done
cp /tmp/cuda_new.so $CU
echo "=== (4) md5 t=$(el)"
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
for s in llama-3.2-1b llama-3.1-8b; do line="$s:"
  for v in "8 2 -1" "8 1 31"; do set -- $v
    TESSERA_CUDA_GEMV_RING=$3 TESSERA_CUDA_GEMV_RING_PROD=$1 TESSERA_CUDA_GEMV_RING_SLOTS=$2 timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
    line="$line P$1S$2R$3 rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
  done; echo "$line"
done
echo "total $(el) s"
