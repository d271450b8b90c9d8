#!/bin/bash
# cu29-ring final call (default 23): this tree's CUDA plugin ("new", its defaults) against HEAD's ("old"):
# lab bits (default and every ring kind), suites, greedy md5 on three shapes, tg128 interleaved.
# Calls 9 and 11. Needs old/cuda_old.so in the bundle.
# Bundle (lab/NOTES.md cu29-ring, "Re-run"): .dev/r29/slim.tar.xz = bundle27's bundle/ less the
# Vulkan / OpenCL / Level Zero plugins and loaders, vulkan_backend_test and share/tessera/models,
# with this tree's stripped CUDA plugin in lib/tessera/backends/, cuda_gemv_lab in bin/ (lab
# calls) and HEAD's plugin as old/cuda_old.so (A/B calls); the tree plus it must stay under the
# run tool's 64 MiB carry, so the lab and old/ are not both inside.
#   run(command="bash backends/cuda/lab/SCRIPT", carry=[".dev/r29"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r29/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
CU=$P/libtessera_backend_cuda.so; cp $CU /tmp/cuda_new.so; cp $B/old/cuda_old.so /tmp/cuda_old.so
unset TESSERA_CUDA_GEMV_RING
echo "=== (2) suites (new, defaults) t=$(el)"
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
wait_ckpt() { for i in $(seq 1 150); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== (3) md5 t=$(el)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for side in old new; do cp /tmp/cuda_$side.so $CU
    timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
    line="$line $side rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
  done; echo "$line"
done
echo "=== (4) tg128 interleaved t=$(el)"
eb() { cp /tmp/cuda_$2.so $CU; echo "  $1 $2 $(timeout 60 $B/bin/engine bench /tmp/$1 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for side in old new new old old new; do eb llama-3.1-8b $side; done
for side in old new new old; do eb llama-3.2-1b $side; done
for side in old new; do eb qwen2.5-0.5b $side; done
cp /tmp/cuda_new.so $CU
echo "=== (5) 8B tg64x64 greedy (M = 64: no ring launch) t=$(el)"
for side in old new; do cp /tmp/cuda_$side.so $CU; echo "  $side $(timeout 90 $B/bin/engine bench /tmp/llama-3.1-8b --backend cuda -p 16 -n 64 --parallel 64 --greedy -r 1 2>&1 | grep -E '\| tg|rror' | awk '{printf "%s %s", $2, $4}')"; done
echo "total $(el) s"
