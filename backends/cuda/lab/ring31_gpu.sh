#!/bin/bash
# Thirty-first session (cu31-two): the ring's chunk sums compacted to a unit's column 0 (16 floats
# instead of 128: less shared memory, same bits) = "p1", and the same with the ring kernel built
# for two blocks an SM (__launch_bounds__ min 2: <= 72 registers) = "p2", so that the next ring
# launch's blocks can be resident, and stream their first units, while the previous one drains.
# "old" = HEAD c2a878e's plugin (the s31 bundle's). Lab bits (p1's lab), suites and md5s (p1, p2),
# tg128 interleaved on the 1B and 8B.
#   run(command="bash backends/cuda/lab/ring31_gpu.sh", carry=[".dev/s31/b.tar.xz", ".dev/s31/p.tar.xz"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
source backends/cuda/lab/lab_common.sh
make_ckpts llama-3.2-1b llama-3.1-8b
tar xJf .dev/s31/b.tar.xz -C /tmp; tar xJf .dev/s31/p.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=/tmp/p1/lab
CU=$P/libtessera_backend_cuda.so; cp $CU /tmp/cuda_old.so; cp /tmp/p1/cuda.so /tmp/cuda_p1.so; cp /tmp/p2/cuda.so /tmp/cuda_p2.so
echo "=== (1) lab (p1) t=$(el)"
timeout 100 $LAB --rope24 > $OUT/rope24.log 2>&1; echo "rope24 rc=$?"
grep -E "^checked rope_epi .* form=-1|DIFFERENT|rror" $OUT/rope24.log | head -8
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk.log 2>&1
echo "quick rc=$? shapes $(grep -c '^checked' $OUT/chk.log) same-bits $(grep -c 'same bits' $OUT/chk.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk.log); $(grep -E '^checks' $OUT/chk.log) t=$(el)"
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== (2) md5 t=$(el)"
for s in llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for side in old p1 p2; do cp /tmp/cuda_$side.so $CU
    timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
    line="$line $side rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
  done; echo "$line"
done
echo "=== (3) tg128 t=$(el)"
eb() { cp /tmp/cuda_$2.so $CU
  echo "  $1 $2 $(timeout 60 $B/bin/engine bench /tmp/$1 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for side in old p1 p2 p2 p1 old; do eb llama-3.2-1b $side; done
for side in old p1 p2 p2 p1 old; do eb llama-3.1-8b $side; done
echo "=== (4) suites p2 t=$(el)"
cp /tmp/cuda_p2.so $CU; cuda_suites
echo "total $(el) s"
