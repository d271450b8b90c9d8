#!/bin/bash
# gen34_gpu.sh BUNDLE_TAR: the generic MATMUL's M > 8 tiles staged through shared memory
# (MatmulStagedTileKernel), Q4's scales converted once a staged block, the 2-8-row staged GEMV
# on 8-block groups (k_matmul_generic.cu), on the GPU machine. The bundle carries the new
# plugins, HEAD's CUDA plugin under old/ and bench_cuda_kernels under bundle/bin. Logs under
# $OUT (old/ may be left out: then no old runs); BIG=1 adds the Llama-3.1-8B shape, NCU=1 ncu of
# the M > 8 tiles, TILES="0 1 ..." the tile variants the engine runs pp512 with, STAGED_FORMS="4
# ..." staged GEMV forms it runs tg128 with (bundle/bin/
# cuda_backend_test, if there, runs too). Variant
# numbers in the first call's logs (results/gen34): 1 = 8 x 16 tile, 2 = 8 x 8, 5 = 8 x 8 at two
# blocks an SM; kept: 1 and 5, now numbered 1 and 2. The tar, on the dev box:
#   bash ci/bundle.sh build/perf .dev/gen34/bundle --gpu-tests
#   cp build/perf/bin/bench_cuda_kernels .dev/gen34/bundle/bin/   (old/: HEAD's CUDA plugin)
#   (cd .dev/gen34 && tar -cf - bundle old | xz -T2 -6 > ../gen34.tar.xz)
T=${1:?bundle tar}
W=/tmp/gen34; mkdir -p $W; tar -C $W -xJf "$T"; B=$W/bundle; P=$B/lib/tessera/backends
export LD_LIBRARY_PATH=$B/lib
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "=== bench_cuda_kernels --generic"
timeout 300 $B/bin/bench_cuda_kernels --generic > $OUT/generic_lab.log 2>&1; echo "rc=$?"
grep -E "generic_steps|summary|gemv_generic|tile_variant" $OUT/generic_lab.log
echo "=== op_conformance on cuda"
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 200 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/cc.log 2>&1; tail -3 $OUT/cc.log
echo "=== text_golden on cuda"
TESSERA_TEST_PLUGINS=$P/libtessera_backend_cuda.so:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=cuda \
  TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models timeout 200 $B/bin/text_golden_test --gtest_brief=1 > $OUT/cg.log 2>&1; tail -3 $OUT/cg.log
echo "=== cuda_backend_test"
[ -x $B/bin/cuda_backend_test ] && TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 120 $B/bin/cuda_backend_test --gtest_brief=1 2>&1 | tail -2
if [ "${NCU:-0}" = 1 ]; then  # warp states of the tiles on the 8B gate shape (call 2's ncu log)
  NCU_BIN=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
  for v in 1 2; do
    timeout 120 $NCU_BIN --clock-control none -k regex:MatmulStagedTile -c 1 --section WarpStateStats \
      --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
      --section Occupancy $B/bin/bench_cuda_kernels --generic-one 14336 4096 512 q8 $v > $OUT/ncu_v$v.log 2>&1
    echo "ncu variant $v rc=$?"; grep -E "Issue Slots|Eligible|Spilling|Occupancy" $OUT/ncu_v$v.log
  done
fi
mkdir -p $W/oldp; [ -f $W/old/libtessera_backend_cuda.so ] && cp $W/old/libtessera_backend_cuda.so $P/libtessera_backend_cpu.so $W/oldp/
for m in qwen2.5-0.5b llama-3.2-1b; do python3 bench/make_checkpoint.py --shape $m --out $W/$m > /dev/null; done
PROMPT=$(python3 -c "print(' '.join('t%d' % (i % 50) for i in range(300)))")  # prefill runs tiles
bench() {  # plugin-dir model args...
  local d=$1 m=$2; shift 2
  TESSERA_BACKEND_PATH=$d timeout 150 $B/bin/engine bench $m --backend cuda -r 2 "$@" 2>&1 | grep '^| [pt]' | awk -F'|' '{printf "%s %s  ", $2, $4}'
}
echo "=== engine: old / new CUDA plugin (new: default tile, then tiles 0 1 2 on pp512)"
for m in qwen2.5-0.5b llama-3.2-1b; do
  for q in q8 q4; do
    for v in old new; do
      d=$P; [ $v = old ] && d=$W/oldp
      [ $v = old ] && [ ! -f $d/libtessera_backend_cuda.so ] && continue
      echo "$m $q $v: $(bench $d $W/$m -p 512 -n 128 --quantize $q)"
      echo "$m $q $v md5: $(TESSERA_BACKEND_PATH=$d timeout 120 $B/bin/engine run $W/$m --backend cuda --quantize $q -n 48 --temperature 0 "$PROMPT" 2>/dev/null | md5sum)"
    done
    echo "$m $q new tile=0 md5: $(TESSERA_CUDA_GENERIC_TILE=0 TESSERA_BACKEND_PATH=$P timeout 120 $B/bin/engine run $W/$m --backend cuda --quantize $q -n 48 --temperature 0 "$PROMPT" 2>/dev/null | md5sum)"
    for f in ${STAGED_FORMS:-}; do
      echo "$m $q new staged=$f: $(TESSERA_CUDA_GENERIC_STAGED=$f bench $P $W/$m -p 0 -n 128 --quantize $q)"
      echo "$m $q new staged=$f md5: $(TESSERA_CUDA_GENERIC_STAGED=$f TESSERA_BACKEND_PATH=$P timeout 120 $B/bin/engine run $W/$m --backend cuda --quantize $q -n 48 --temperature 0 "$PROMPT" 2>/dev/null | md5sum)"
    done
    for t in ${TILES:-0 1 2}; do echo "$m $q new tile=$t: $(TESSERA_CUDA_GENERIC_TILE=$t bench $P $W/$m -p 512 -n 0 --quantize $q)"; done
  done
done 2>&1 | tee $OUT/engine.log
if [ "${BIG:-0}" = 1 ]; then
  python3 bench/make_checkpoint.py --shape llama-3.1-8b --out $W/llama-3.1-8b > /dev/null
  for q in q8 q4; do
    echo "llama-3.1-8b $q new: $(bench $P $W/llama-3.1-8b -p 512 -n 128 --quantize $q)"
    [ -f $W/oldp/libtessera_backend_cuda.so ] && echo "llama-3.1-8b $q old: $(bench $W/oldp $W/llama-3.1-8b -p 512 -n 32 --quantize $q)"
    for f in ${STAGED_FORMS:-}; do echo "llama-3.1-8b $q new staged=$f: $(TESSERA_CUDA_GENERIC_STAGED=$f bench $P $W/llama-3.1-8b -p 0 -n 128 --quantize $q)"; done
    for t in ${TILES:-0}; do echo "llama-3.1-8b $q new tile=$t: $(TESSERA_CUDA_GENERIC_TILE=$t bench $P $W/llama-3.1-8b -p 512 -n 0 --quantize $q)"; done
  done 2>&1 | tee -a $OUT/engine.log
fi
