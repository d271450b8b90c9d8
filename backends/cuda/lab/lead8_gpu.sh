#!/bin/bash
# The lead's one GPU call of the eighth session, from the repo root, carrying .dev/bundle.tar.gz
# (the tree's bundle), .dev/labs.tar.xz (the stripped kernel labs), .dev/old7.tar.xz (the
# seventh session's plugins) and .gl (glvnd debs for Vulkan): CUDA suites, kernel-lab bit checks,
# engine new vs old7, Vulkan suites. Steps stop starting past $DEADLINE s. Output:
# results/lead8_h100_*.log.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-360}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
tar xzf .dev/bundle.tar.gz -C .dev && tar xJf .dev/labs.tar.xz -C .dev/bundle/bin
B=.dev/bundle; export LD_LIBRARY_PATH=$PWD/$B/lib; P=$PWD/$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
(for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
. backends/cuda/lab/lab_common.sh
echo "=== CUDA suites"; cuda_suites; cp $OUT/tests.log $OUT/cuda_tests.log
echo "=== HTTP BatchingTest"; TESSERA_BACKEND=cuda timeout 120 python3 tests/server/server_test.py --engine $B/bin/engine BatchingTest 2>&1 | tail -2
echo "=== bench_cuda_kernels --quick"; timeout 100 $B/bin/bench_cuda_kernels --quick > $OUT/kern.log 2>&1; echo rc=$?; grep -iE "summary" $OUT/kern.log | tail -2
echo "=== gemm lab --default-only"; timeout 100 $B/bin/cuda_gemm_lab --default-only > $OUT/gemm.log 2>&1; echo rc=$?; grep -E "failures=" $OUT/gemm.log; grep -c " ok" $OUT/gemm.log
echo "=== gemm lab --addfuse"; timeout 60 $B/bin/cuda_gemm_lab --addfuse > $OUT/addfuse.log 2>&1; echo rc=$?; grep -E "failures=" $OUT/addfuse.log; grep -c " ok" $OUT/addfuse.log
echo "checks $(( $(date +%s) - T0 )) s"
rm -rf /tmp/oldb && cp -r $B /tmp/oldb && tar xJf .dev/old7.tar.xz -C /tmp/oldb/lib/tessera/backends/
eb() { local d=$PWD/$B; [ $1 = old ] && d=/tmp/oldb; shift
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench "$@" 2>&1 | grep -E "pp[0-9]|tg[0-9]|rror" | sed 's/^/    /'; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  for v in new old; do echo "=== $s pp2048 exact $v"; eb $v --backend cuda /tmp/$s -p 2048 -n 0 -r 2; done
  for v in new old; do echo "=== $s x64 $v"; eb $v --backend cuda /tmp/$s -p 0 -n 64 -r 2 --parallel 64; done
  for v in new old; do echo "=== $s tg128 $v"; eb $v --backend cuda /tmp/$s -p 16 -n 128 -r 3; done
  echo "  t=$(( $(date +%s) - T0 )) s"
done
left && { echo "=== 8B pp2048 bf16 new"; eb new --backend cuda /tmp/llama-3.1-8b -p 2048 -n 0 -r 2 --backend-opt cuda.matmul_precision=bf16; }
left && { echo "=== Vulkan check"; TESSERA_BUNDLE=$B BENCH_TIMEOUT=60 PP=64 TG=16 OUT=$OUT/vk bash backends/vulkan/gpu_check.sh 2>&1 | grep -vE "^\[ +OK|RUN" | tail -14; }
left && { echo "=== 8B tg128 vulkan new"; eb new --backend vulkan /tmp/llama-3.1-8b -p 16 -n 128 -r 2; }
echo "total $(( $(date +%s) - T0 )) s"
