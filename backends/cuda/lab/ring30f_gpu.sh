#!/bin/bash
# cu30-prod, final call: the tree's defaults (4 producer warps, mask 31: the downs on the ring too)
# against HEAD's plugin (old/cuda_old.so): lab bits, CUDA suites, md5 (default vs RING=0), tg128
# interleaved on the three models, Vulkan 8B beside CUDA 8B (issue 6's ratio).
# Bundle: .dev/r30/slim.tar.xz (xz -9) with HEAD's Vulkan plugin and bundle27's libvulkan.so.1.
#   run(command="bash backends/cuda/lab/ring30f_gpu.sh", carry=[".gl", ".dev/r30"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r30/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
CU=$P/libtessera_backend_cuda.so; cp $CU /tmp/cuda_new.so; cp $B/old/cuda_old.so /tmp/cuda_old.so
echo "=== (1) lab --quick (default; every ring kind at 2 / 8 producers) t=$(el)"
for v in "def 4" "31 2" "31 8"; do set -- $v
  if [ $1 = def ]; then unset TESSERA_CUDA_GEMV_RING; else export TESSERA_CUDA_GEMV_RING=$1; fi
  TESSERA_CUDA_GEMV_RING_PROD=$2 GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk_$1_p$2.log 2>&1
  echo "RING=$1 PROD=$2 rc=$? shapes $(grep -c '^checked' $OUT/chk_$1_p$2.log) same-bits $(grep -c 'same bits' $OUT/chk_$1_p$2.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk_$1_p$2.log); $(grep -E '^checks' $OUT/chk_$1_p$2.log) t=$(el)"
done
unset TESSERA_CUDA_GEMV_RING
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
echo "=== (4) tg128 old / new interleaved t=$(el)"
eb() { cp /tmp/cuda_$2.so $CU
  echo "  $1 $2 $3 $(timeout 60 $B/bin/engine bench /tmp/$1 --backend $3 -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for side in old new new old old new; do eb llama-3.1-8b $side cuda; done
for side in old new new old old new; do eb llama-3.2-1b $side cuda; done
for side in old new new old; do eb qwen2.5-0.5b $side cuda; done
echo "=== (5) Vulkan 8B beside CUDA 8B t=$(el)"
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done 2>/dev/null; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
for be in vulkan cuda vulkan cuda; do eb llama-3.1-8b new $be; done
echo "total $(el) s"
