#!/bin/bash
# gen33_gpu.sh BUNDLE_TAR: the generic MATMUL kernel with eight steps of weight loads in flight
# (k_matmul_generic.cu), on the GPU machine. The bundle carries the new plugins, the old CUDA
# plugin under old/ and bench_cuda_kernels under bin/. Writes logs under $OUT; BIG=1 adds the
# Llama-3.1-8B shape (new plugin only). The tar, on the dev box (OLD = an earlier bundle):
#   bash ci/bundle.sh build/perf .dev/gen33/bundle --gpu-tests
#   mkdir -p .dev/gen33/old && cp OLD/lib/tessera/backends/libtessera_backend_cuda.so .dev/gen33/old/
#   cp build/perf/bin/bench_cuda_kernels .dev/gen33/bundle/bin/
#   (cd .dev/gen33 && tar -cf - bundle old | xz -T2 -6 > ../gen33.tar.xz)
T=${1:?bundle tar}
W=/tmp/gen33; mkdir -p $W; tar -C $W -xJf "$T"; B=$W/bundle; P=$B/lib/tessera/backends
export LD_LIBRARY_PATH=$B/lib
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "=== bench_cuda_kernels --generic"
timeout 200 $B/bin/bench_cuda_kernels --generic 2>&1 | tee $OUT/generic_lab.log | grep -v "^$"
echo "=== op_conformance on cuda"
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 200 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/cc.log 2>&1; tail -3 $OUT/cc.log
echo "=== text_golden on cuda"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda \
  TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 200 $B/bin/text_golden_test --gtest_brief=1 > $OUT/cg.log 2>&1; tail -3 $OUT/cg.log
mkdir -p $W/oldp && cp $W/old/libtessera_backend_cuda.so $W/oldp/
for m in qwen2.5-0.5b llama-3.2-1b; do python3 bench/make_checkpoint.py --shape $m --out $W/$m > /dev/null; done
echo "=== engine: old / new CUDA plugin, quantized and bf16"
for m in qwen2.5-0.5b llama-3.2-1b; do
  for q in q8 q4; do
    for v in old new; do
      d=$P; [ $v = old ] && d=$W/oldp
      echo "$m $q $v: $(TESSERA_BACKEND_PATH=$d timeout 120 $B/bin/engine bench $W/$m --backend cuda -p 512 -n 128 -r 2 --quantize $q 2>&1 | grep '^| [pt]' | awk -F'|' '{printf "%s %s  ", $2, $4}')"
      echo "$m $q $v md5: $(TESSERA_BACKEND_PATH=$d timeout 120 $B/bin/engine run $W/$m --backend cuda --quantize $q -n 48 --temperature 0 't1 t2 t3 t4 t5' 2>/dev/null | md5sum)"
    done
  done
  echo "$m bf16 new: $(timeout 120 $B/bin/engine bench $W/$m --backend cuda -p 512 -n 128 -r 2 2>&1 | grep '^| [pt]' | awk -F'|' '{printf "%s %s  ", $2, $4}')"
done 2>&1 | tee $OUT/engine.log
if [ "${BIG:-0}" = 1 ]; then
  python3 bench/make_checkpoint.py --shape llama-3.1-8b --out $W/llama-3.1-8b > /dev/null
  for q in q8 q4 bf16; do
    qa=(); [ $q != bf16 ] && qa=(--quantize $q)
    echo "llama-3.1-8b $q new: $(timeout 240 $B/bin/engine bench $W/llama-3.1-8b --backend cuda -p 512 -n 128 -r 2 "${qa[@]}" 2>&1 | grep '^| [pt]' | awk -F'|' '{printf "%s %s  ", $2, $4}')"
  done 2>&1 | tee -a $OUT/engine.log
fi
