#!/bin/bash
# The lead's GPU call of the tenth session, from the repo root, carrying .dev/bundle.tar.gz (the
# tree's bundle + test binaries + labs), .dev/old10.tar.xz (the ninth session's engine and CUDA /
# Vulkan / CPU plugins) and .gl (glvnd debs for Vulkan). Suites first (CUDA, greedy, labs' bit
# checks, Vulkan), then engine A/B on one instance: "new" = this tree, "oldp" = this engine with
# the ninth session's plugins (kernel changes alone), "old" = the ninth session's engine and
# plugins. Steps stop starting past $DEADLINE s. Knobs: XN (tokens of the x64 test, 64), VK=0.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-420}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
tar xzf .dev/bundle.tar.gz -C .dev
B=.dev/bundle; export LD_LIBRARY_PATH=$PWD/$B/lib; P=$PWD/$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
(for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
. backends/cuda/lab/lab_common.sh
echo "=== CUDA suites"; cuda_suites; cp $OUT/tests.log $OUT/cuda_tests.log
echo "=== greedy + argmax graph"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda \
  TESSERA_DEFAULT_MODEL=$PWD/models/default TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models \
  timeout 90 $B/bin/server_greedy_test --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED)|Failure|SKIPPED" | head -8
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED)|Failure|SKIPPED" | head -4
echo "=== HTTP BatchingTest + greedy API"; TESSERA_BACKEND=cuda timeout 150 python3 tests/server/server_test.py --engine $B/bin/engine BatchingTest ApiTest.test_greedy_on_device_matches_logits 2>&1 | tail -3
echo "=== gemv lab --quick"; timeout 120 $B/bin/cuda_gemv_lab --quick > $OUT/gemv.log 2>&1; echo rc=$?; grep -E "failures=" $OUT/gemv.log; grep -c "same bits" $OUT/gemv.log
[ -x $B/bin/cuda_gemm_lab ] && { echo "=== gemm lab --smallm"; timeout 120 $B/bin/cuda_gemm_lab --smallm > $OUT/gemm_smallm.log 2>&1; echo rc=$?; grep -iE "fail|mismatch" $OUT/gemm_smallm.log | head -5; tail -3 $OUT/gemm_smallm.log; }
echo "checks $(( $(date +%s) - T0 )) s"
mkb() { rm -rf /tmp/$1 && cp -r $B /tmp/$1 && tar xJf .dev/old10.tar.xz -C /tmp/$1/lib/tessera/backends/ && mv /tmp/$1/lib/tessera/backends/engine /tmp/$1/engine.old; }
mkb oldp; mkb old; mv /tmp/old/engine.old /tmp/old/bin/engine
eb() { local d=$PWD/$B; [ $1 = old ] && d=/tmp/old; [ $1 = oldp ] && d=/tmp/oldp; shift
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench "$@" 2>&1 | grep -E "\| (pp|tg)[0-9]|rror" | sed 's/^/    /'; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  for r in 1 2; do for v in new oldp; do echo "=== $s tg128 $v r$r"; eb $v --backend cuda /tmp/$s -p 16 -n 128 -r 3; done; done
  echo "=== $s tg128 old (the ninth session's engine too)"; eb old --backend cuda /tmp/$s -p 16 -n 128 -r 3
  for v in new oldp; do echo "=== $s x64 greedy $v"; eb $v --backend cuda /tmp/$s -p 0 -n ${XN:-64} -r 2 --parallel 64 --greedy; done
  echo "=== $s x64 logits new"; eb new --backend cuda /tmp/$s -p 0 -n ${XN:-64} -r 2 --parallel 64
  echo "  t=$(( $(date +%s) - T0 )) s"
done
[ "${VK:-1}" = 1 ] || { echo "total $(( $(date +%s) - T0 )) s"; exit 0; }
echo "=== Vulkan"
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
FUSE="TESSERA_VULKAN_FUSE_SWIGLU=1 TESSERA_VULKAN_FUSE_ROPE_Q=1"
left && { timeout 120 $B/bin/vulkan_backend_test --gtest_brief=1 2>&1 | grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" | head -6; }
left && { TESSERA_BUNDLE=$B BENCH_TIMEOUT=40 PP=64 TG=16 OUT=$OUT/vk bash backends/vulkan/gpu_check.sh 2>&1 | grep -vE "^\[ +OK|RUN" | tail -14; }
left && { echo "=== Vulkan suites with the fusion knobs on"; env $FUSE TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 60 $B/bin/op_conformance_test --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED) |FAILED TEST" | head -4
  env $FUSE TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so timeout 60 $B/bin/text_golden_test --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED) |FAILED TEST" | head -4; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  left || break
  for r in 1 2; do
    for v in new oldp; do echo "=== $s vulkan tg128 $v r$r"; eb $v --backend vulkan /tmp/$s -p 16 -n 128 -r 2; done
    echo "=== $s vulkan tg128 new+fuse r$r"; ( export $FUSE; eb new --backend vulkan /tmp/$s -p 16 -n 128 -r 2 )
    [ $s = llama-3.1-8b ] || break
  done
done
left && for s in llama-3.1-8b qwen2.5-0.5b; do
  echo "=== $s pp512 vulkan coop new / oldp, vulkan default, cuda"; TESSERA_VULKAN_COOPMAT=1 eb new --backend vulkan /tmp/$s -p 512 -n 0 -r 2
  TESSERA_VULKAN_COOPMAT=1 eb oldp --backend vulkan /tmp/$s -p 512 -n 0 -r 2; eb new --backend vulkan /tmp/$s -p 512 -n 0 -r 2; eb new --backend cuda /tmp/$s -p 512 -n 0 -r 2
done
echo "total $(( $(date +%s) - T0 )) s"
