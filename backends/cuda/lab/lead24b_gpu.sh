#!/bin/bash
# The lead's check of the twenty-fourth session's tree on the H200, one call: this tree's bundle
# (.dev/bundle24n.tar.xz: ci/bundle.sh of build/perf + the test and lab binaries) against HEAD
# 120da52's CUDA plugin (.dev/old24.tar.xz: old24/ = bundle24's stripped plugin; the engine did
# not change, so "old" = bundle24n with that plugin swapped in). Sides: old, new, and new with one
# change switched off: nor = TESSERA_CUDA_FUSE_ROPE_EPI=0 (cu24-chain), noe =
# TESSERA_CUDA_GEMM_TMA_EVICT=0 (cu24-head), nod = TESSERA_CUDA_EAGER_DOWNLOAD=0 (cu24-step).
#   1. CUDA op conformance / text golden / server_scheduler_test / argmax graph replay (new)
#   2. cuda_gemv_lab --quick same bits (new)
#   3. greedy md5 old / new: 0.5B, 1B, 8B
#   4. interleaved tg128 old / new / nor / nod / new / old on 0.5B and 1B, old / new / new / old
#      on 8B; tg64x64 greedy old / new / noe / new / old on 0.5B and 1B, new / noe / noe / new on 8B
# No step starts past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-200}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
rm -rf /tmp/bundle /tmp/old24 && tar xJf .dev/bundle24n.tar.xz -C /tmp && tar xJf .dev/old24.tar.xz -C /tmp
N=/tmp/bundle; O=/tmp/oldb; rm -rf $O && cp -r $N $O
cp /tmp/old24/libtessera_backend_cuda.so $O/lib/tessera/backends/
B=$N; P=$N/lib/tessera/backends; export LD_LIBRARY_PATH=$N/lib
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done; }
echo "=== CUDA suites (new) $(t)"
cuda_suites
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 > $OUT/argmax.log 2>&1
echo "cuda_argmax_graph_test rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/argmax.log | tr '\n' ' ')"
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 80 $B/bin/cuda_gemv_lab --quick > $OUT/lab_gemv.log 2>&1
echo "gemv --quick rc=$? $(grep -cE 'same bits' $OUT/lab_gemv.log) same-bits lines; $(grep -c DIFFERENT $OUT/lab_gemv.log) DIFFERENT; $(grep -E 'failures' $OUT/lab_gemv.log | tail -1)"
timeout 40 $B/bin/cuda_gemv_lab --rope24 > $OUT/lab_rope24.log 2>&1
echo "gemv --rope24 rc=$? $(grep -ciE 'same bits|identical' $OUT/lab_rope24.log) same-bits lines; $(grep -E 'failures' $OUT/lab_rope24.log | tail -1)"
eng() {  # eng SIDE ARGS...: SIDE old / new / nor / noe / nod
  local d=$N e=X_NONE=1; [ $1 = old ] && d=$O
  [ $1 = nor ] && e=TESSERA_CUDA_FUSE_ROPE_EPI=0; [ $1 = noe ] && e=TESSERA_CUDA_GEMM_TMA_EVICT=0
  [ $1 = nod ] && e=TESSERA_CUDA_EAGER_DOWNLOAD=0; shift
  env $e LD_LIBRARY_PATH=$d/lib timeout 120 $d/bin/engine "$@"; }
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  wait_ck $s; echo "=== $s $(t)"
  for side in old new; do
    eng $side --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 2> /dev/null > /tmp/md_${s}_$side.txt
    echo "  $side cuda md5 $(md5sum < /tmp/md_${s}_$side.txt | cut -c1-12)"
  done
  sides="old new nor nod new old"; xs="old new noe new old"
  [ $s = llama-3.1-8b ] && sides="old new new old" && xs="new noe noe new"
  for side in $sides; do
    left && eng $side bench --backend cuda /tmp/$s -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | sed "s/^/  $side /"
  done
  for side in $xs; do
    left && eng $side bench --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1 |
      grep -E "\| tg|rror" | sed "s/^/  $side x64 /"
  done
done
echo "total $(t)"
