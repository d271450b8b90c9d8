#!/bin/bash
# cu30-pre, call 10: the ring combiner's task inputs (residual, bias, RoPE cos / sin) read before
# the task's barrier, against HEAD d1eb298's plugin (old/cuda_old.so): lab rope_epi + bits + lines,
# suites, md5, engine tg128 interleaved on the 8B and 1B.
#   run(command="bash backends/cuda/lab/ring30j_gpu.sh", carry=[".dev/r30"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in llama-3.2-1b llama-3.1-8b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r30/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
CU=$P/libtessera_backend_cuda.so; cp $CU /tmp/cuda_new.so; cp $B/old/cuda_old.so /tmp/cuda_old.so
source backends/cuda/lab/lab_common.sh
echo "=== (1) lab t=$(el)"
timeout 100 $LAB --rope24 > $OUT/rope24.log 2>&1; echo "rope24 rc=$?"
grep -E "^checked rope_epi .* form=-1|^time rope_epi|DIFFERENT|rror" $OUT/rope24.log
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk.log 2>&1
echo "quick rc=$? shapes $(grep -c '^checked' $OUT/chk.log) same-bits $(grep -c 'same bits' $OUT/chk.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk.log); $(grep -E '^checks' $OUT/chk.log) t=$(el)"
GEMV_LAB_DEC17_ONLY=8B-o-res,8B-down-res,8B-norm-gate-up-swiglu,1B-o-res,1B-down-res timeout 60 $LAB --dec17 2>&1 | grep -E "^dec17|rror"
echo "=== (2) suites t=$(el)"
cuda_suites
wait_ckpt() { for i in $(seq 1 200); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== (3) md5 t=$(el)"
for s in llama-3.2-1b llama-3.1-8b; do wait_ckpt $s
  timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
  echo "$s rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
done
echo "=== (4) tg128 old / new t=$(el)"
eb() { cp /tmp/cuda_$2.so $CU
  echo "  $1 $2 $(timeout 60 $B/bin/engine bench /tmp/$1 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for side in old new new old old new; do eb llama-3.1-8b $side; done
for side in old new new old old new; do eb llama-3.2-1b $side; done
echo "total $(el) s"
