#!/bin/bash
# cu21-gemv's second GPU call (twenty-first session), carrying .dev/bundle21.tar.xz and
# .dev/cu21-gemv/gemv21b.tar.xz (gemv21b/: this tree's stripped CUDA plugin and cuda_gemv_lab,
# HEAD's kernels in cuda_gemv_lab.old, this script). "new" = this tree's default (the split-K
# combine with one acq_rel atomic and one load round trip, the residual loaded ahead in
# whole-chunk kernels); "xp2" = the same plugin with TESSERA_CUDA_GEMV_XP=2 (x pre-split once a
# block in shared memory also for plain whole-chunk launches below K = 4096 and split-K ones, each
# split-K block its own chunks: the 0.5B / 1B o, the 0.5B down).
# Lab bit checks (default and XP=2); --dec17 old new xp2 old new xp2; CUDA suites (new, xp2);
# greedy md5 old / new / xp2 (0.5B, 1B, 8B); tg128 old new xp2 xp2 new old (0.5B, 1B x2; 8B once).
# Run: `tar xJf .dev/cu21-gemv/gemv21b.tar.xz -C /tmp && OUT=$OUT bash /tmp/gemv21b/gemv21b_gpu.sh`.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-88}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
G=/tmp/gemv21b; [ -d $G ] || tar xJf .dev/cu21-gemv/gemv21b.tar.xz -C /tmp
B=/tmp/bundle; [ -d $B/bin ] || tar xJf .dev/bundle21.tar.xz -C /tmp
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf /tmp/newp && cp -r $B /tmp/newp && cp $G/libtessera_backend_cuda.so /tmp/newp/lib/tessera/backends/
export LD_LIBRARY_PATH=$B/lib
side_dir() { [ $1 = old ] && echo $B || echo /tmp/newp; }
side_env() { [ $1 = xp2 ] && echo TESSERA_CUDA_GEMV_XP=2 || echo X_NONE=1; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }
for side in new xp2; do
  echo "=== lab bit checks ($side) $(date +%T)"
  env $(side_env $side) GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 60 $G/cuda_gemv_lab --quick > /tmp/lab_checks_$side.log 2>&1
  echo "rc=$? same-bits lines $(grep -c 'same bits' /tmp/lab_checks_$side.log), checked lines $(grep -c '^checked' /tmp/lab_checks_$side.log)"
  grep -E "FAILED|DIFFERENT|failures|rror" /tmp/lab_checks_$side.log | head -6
  cat /tmp/lab_checks_$side.log >> $OUT/lab_checks.log
done
el
echo "=== lab --dec17 old new xp2 old new xp2"
for side in old new xp2 old new xp2; do
  L=$G/cuda_gemv_lab; [ $side = old ] && L=$G/cuda_gemv_lab.old
  env $(side_env $side) GEMV_LAB_TAG=$side timeout 60 $L --dec17 >> $OUT/lab_dec17.log 2>&1
done
grep -E "^dec17 (05B|1B)" $OUT/lab_dec17.log | sort -s -k2,2 | awk '{printf "%s %s %s; ", $2, $3, $4} NR % 6 == 0 {print ""}'
el
P=/tmp/newp/lib/tessera/backends
for side in new xp2; do
  echo "=== CUDA suites ($side)"; env $(side_env $side) bash -c ". backends/cuda/lab/lab_common.sh; B=$B P=$P OUT=/tmp cuda_suites"
  cat /tmp/tests.log >> $OUT/tests.log
  echo "  graph replay: $(env $(side_env $side) TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
done
el
md5s() { local s side d
  for s in "$@"; do waitck $s
    for side in old new xp2; do d=$(side_dir $side)
      env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
      echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
    done
  done; el; }
round() { local s=$1 side; left || return; waitck $s; echo "=== $s tg128"
  for side in old new xp2 xp2 new old; do ab $side /tmp/$s -p 16 -n 128 -r 2; done; el; }
echo "=== greedy md5 (48 tokens) old / new / xp2"
md5s qwen2.5-0.5b llama-3.2-1b
round qwen2.5-0.5b; round llama-3.2-1b; round qwen2.5-0.5b; round llama-3.2-1b
left && md5s llama-3.1-8b
if left; then waitck llama-3.1-8b; echo "=== llama-3.1-8b tg128 old new"
  for side in old new; do ab $side /tmp/llama-3.1-8b -p 16 -n 128 -r 2; done; el; fi
echo "=== done"; el
