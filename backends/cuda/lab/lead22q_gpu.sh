#!/bin/bash
# The lead's call 1 of the twenty-second session: cu21-qkv's XP for the 0.5B norm + q/k/v (GemvXpOn),
# measured. From the repo root, carrying .dev/bundle22.tar.xz (ci/bundle.sh of build/perf with the
# change + test and lab binaries) and .dev/old22.tar.xz (HEAD bcdacb7's stripped CUDA plugin): lab
# --dec17 line old / new, the lab's --quick bit checks, greedy md5 and 0.5B tg128 old / new x3.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b
tar xJf .dev/bundle22.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
O=/tmp/old; rm -rf $O && cp -r $B $O && mkdir -p /tmp/x && tar xJf .dev/old22.tar.xz -C /tmp/x && cp /tmp/x/libtessera_backend_cuda.so $O/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
echo "=== lab --dec17 05B-norm-qkv (old = XP=0 on that line) $(t)"
for side in old new old new; do E=X_NONE=1; [ $side = old ] && E=TESSERA_CUDA_GEMV_XP=0
  env $E GEMV_LAB_DEC17_ONLY=05B-norm-qkv GEMV_LAB_TAG=$side timeout 20 $B/bin/cuda_gemv_lab --dec17 >> $OUT/lab_dec17.log 2>&1
done
grep -E "^dec17" $OUT/lab_dec17.log | awk '{print "  " $2, $3, $4}'
echo "=== lab bits $(t)"
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 60 $B/bin/cuda_gemv_lab --quick > $OUT/lab_gemv.log 2>&1
echo "gemv --quick rc=$? $(grep -cE 'same bits' $OUT/lab_gemv.log) same-bits lines; $(grep -c DIFFERENT $OUT/lab_gemv.log) DIFFERENT; $(grep -E 'failures' $OUT/lab_gemv.log | tail -1)"
eng() { local d=$B; [ $1 = old ] && d=$O; shift; LD_LIBRARY_PATH=$d/lib timeout 120 $d/bin/engine "$@"; }
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 200 ]; do sleep 1; i=$((i + 1)); done; }
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
s=qwen2.5-0.5b; wait_ck $s; echo "=== $s $(t)"
for side in old new; do
  eng $side --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 2> /dev/null > /tmp/md_$side.txt
  echo "  $side cuda md5 $(md5sum < /tmp/md_$side.txt | cut -c1-12)"
done
for side in old new new old old new; do
  eng $side bench --backend cuda /tmp/$s -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | sed "s/^/  $side /"
done
echo "total $(t)"
