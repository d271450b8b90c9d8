#!/bin/bash
# cu29-ring, call 14: the final tree (first weights before the PDL wait only where no node of the
# execute writes them, compute capability checked per device): lab bits (default and every ring
# kind, PDL on and off), CUDA suites, md5, tg128 default vs TESSERA_CUDA_GEMV_RING=0 (= HEAD's
# kernels, no SWIGLU epilogue), Vulkan 8B beside CUDA 8B for issue 6's ratio.
# Bundle: ring29_gpu.sh's with cuda_gemv_lab, plus bundle27's lib/libvulkan.so.1 and HEAD's
# Vulkan plugin (.dev/vk28/vk.so.xz) in lib/tessera/backends/.
#   run(command="bash backends/cuda/lab/ring29_final2_gpu.sh", carry=[".gl", ".dev/r29"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
for s in llama-3.1-8b llama-3.2-1b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/r29/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
CU=$P/libtessera_backend_cuda.so
echo "=== (1) lab --quick: default, RING=31 t=$(el)"
for m in def 31; do
  if [ $m = def ]; then unset TESSERA_CUDA_GEMV_RING; else export TESSERA_CUDA_GEMV_RING=$m; fi
  GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk_$m.log 2>&1
  echo "RING=$m rc=$? shapes $(grep -c '^checked' $OUT/chk_$m.log) same-bits $(grep -c 'same bits' $OUT/chk_$m.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk_$m.log); $(grep -E '^checks' $OUT/chk_$m.log)"
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
wait_ckpt() { for i in $(seq 1 150); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== (3) md5 t=$(el)"
for s in llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for m in 0 def; do
    if [ $m = def ]; then unset TESSERA_CUDA_GEMV_RING; else export TESSERA_CUDA_GEMV_RING=$m; fi
    timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
    line="$line RING=$m rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
  done; echo "$line"
done
unset TESSERA_CUDA_GEMV_RING
echo "=== (4) tg128 t=$(el)"
eb() { if [ $3 = def ]; then unset TESSERA_CUDA_GEMV_RING; else export TESSERA_CUDA_GEMV_RING=$3; fi
  echo "  $1 $2 RING=$3 $(timeout 60 $B/bin/engine bench /tmp/$1 --backend $2 -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; unset TESSERA_CUDA_GEMV_RING; }
for m in 0 def def 0; do eb llama-3.1-8b cuda $m; done
for m in 0 def def 0; do eb llama-3.2-1b cuda $m; done
echo "=== (5) Vulkan 8B beside CUDA 8B t=$(el)"
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done 2>/dev/null; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
for be in vulkan cuda vulkan cuda; do eb llama-3.1-8b $be def; done
echo "total $(el) s"
