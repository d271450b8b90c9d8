#!/bin/bash
# cu30-rope, call 8: the norm + q/k/v on the TMA ring with ROPE q/k + KV_WRITE k/v in its combiner
# (mask bit 32; TESSERA_CUDA_GEMV_RING=63 = the tree's 31 + it): lab rope_epi checks (every
# rounding form, positions, slots) and times, lab bits, md5, CUDA suites, engine tg128 31 vs 63.
#   run(command="bash backends/cuda/lab/ring30h_gpu.sh", carry=[".dev/r30"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in llama-3.2-1b llama-3.1-8b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r30/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
CU=$P/libtessera_backend_cuda.so
echo "=== (1) lab --rope24 RING=31 / 63 t=$(el)"
for m in 31 63; do
  TESSERA_CUDA_GEMV_RING=$m timeout 100 $LAB --rope24 > $OUT/rope24_$m.log 2>&1
  echo "RING=$m rc=$?"; grep -E "^checked rope_epi|^time rope_epi|forms matching|DIFFERENT|rror" $OUT/rope24_$m.log
done
echo "=== (2) lab --quick RING=63 t=$(el)"
TESSERA_CUDA_GEMV_RING=63 GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk63.log 2>&1
echo "rc=$? shapes $(grep -c '^checked' $OUT/chk63.log) same-bits $(grep -c 'same bits' $OUT/chk63.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk63.log); $(grep -E '^checks' $OUT/chk63.log) t=$(el)"
echo "=== (3) suites RING=63 t=$(el)"
export TESSERA_CUDA_GEMV_RING=63
TESSERA_CONFORMANCE_PLUGINS=$CU timeout 100 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/cc.log 2>&1
echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/cc.log | tr '\n' ' ')"
TESSERA_TEST_PLUGINS=$CU:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models \
  timeout 100 $B/bin/text_golden_test --gtest_brief=1 > $OUT/cg.log 2>&1
echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/cg.log | tr '\n' ' ')"
TESSERA_TEST_PLUGINS=$CU:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda TESSERA_DEFAULT_MODEL=$PWD/models/default \
  timeout 150 $B/bin/server_scheduler_test --gtest_brief=1 > $OUT/ss.log 2>&1
echo "server_scheduler rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/ss.log | tr '\n' ' ')"
TESSERA_CUDA_PLUGIN=$CU TESSERA_TEST_PLUGINS=$CU timeout 100 $B/bin/cuda_argmax_graph_test --gtest_brief=1 > $OUT/ag.log 2>&1
echo "argmax_graph rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/ag.log | tr '\n' ' ')"
unset TESSERA_CUDA_GEMV_RING
wait_ckpt() { for i in $(seq 1 200); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== (4) md5 t=$(el)"
for s in llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for m in 31 63; do
    TESSERA_CUDA_FUSE_DEBUG=1 TESSERA_CUDA_GEMV_RING=$m timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run_$m.err
    line="$line RING=$m rc=$? $(md5sum < /tmp/run.txt | cut -c1-12) rope-refusals=$(grep -c 'rope epilogue' /tmp/run_$m.err)"
  done; echo "$line"
done
grep -m3 "rope" /tmp/run_63.err
echo "=== (5) tg128 t=$(el)"
eb() { echo "  $1 RING=$2 $(TESSERA_CUDA_GEMV_RING=$2 timeout 60 $B/bin/engine bench /tmp/$1 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for m in 31 63 63 31 31 63; do eb llama-3.1-8b $m; done
for m in 31 63 63 31 31 63; do eb llama-3.2-1b $m; done
echo "total $(el) s"
