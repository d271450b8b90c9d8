#!/bin/bash
# cu30, the session's final call: this tree's defaults (ring mask 63, four producers) against the
# session start's plugin (HEAD bfc7240, old/cuda_old.so): lab rope_epi + bits, CUDA suites, md5
# (default vs RING=0), tg128 interleaved on the three models.
#   run(command="bash backends/cuda/lab/ring30i_gpu.sh", carry=[".dev/r30"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r30/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
CU=$P/libtessera_backend_cuda.so; cp $CU /tmp/cuda_new.so; cp $B/old/cuda_old.so /tmp/cuda_old.so
echo "=== (1) lab t=$(el)"
timeout 100 $LAB --rope24 > $OUT/rope24.log 2>&1; echo "rope24 rc=$?"
grep -E "^checked rope_epi .* form=-1|^time rope_epi|DIFFERENT|rror" $OUT/rope24.log
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk.log 2>&1
echo "quick rc=$? shapes $(grep -c '^checked' $OUT/chk.log) same-bits $(grep -c 'same bits' $OUT/chk.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk.log); $(grep -E '^checks' $OUT/chk.log) t=$(el)"
echo "=== (2) suites t=$(el)"
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
wait_ckpt() { for i in $(seq 1 200); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== (3) md5 t=$(el)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for m in 0 def; do
    if [ $m = def ]; then unset TESSERA_CUDA_GEMV_RING; else export TESSERA_CUDA_GEMV_RING=$m; fi
    timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
    line="$line RING=$m rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
  done; echo "$line"
done
unset TESSERA_CUDA_GEMV_RING
echo "=== (4) tg128 session start (old) / final (new), interleaved t=$(el)"
eb() { cp /tmp/cuda_$2.so $CU
  echo "  $1 $2 $(timeout 60 $B/bin/engine bench /tmp/$1 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for side in old new new old old new; do eb llama-3.1-8b $side; done
for side in old new new old old new; do eb llama-3.2-1b $side; done
for side in old new new old; do eb qwen2.5-0.5b $side; done
echo "total $(el) s"
