#!/bin/bash
# The lead's check of the sixteenth session's CUDA tree (prefill attention tiles' warp-uniform
# paths, the 128 x 256 one-piece GEMM tile for the big 8B shapes, and whatever cu-dec16 kept)
# against HEAD fee64b5's plugin (.dev/old16.tar.xz): CUDA suites, cuda_argmax_graph_test /
# cuda_backend_test, the attention and GEMM labs' bit checks, greedy md5 per side, then interleaved
# prev / new rounds of pp2048 (exact and bf16 mode), tg128 and 8B x64.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-480}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
tar xf ${BUNDLE:-.dev/bundle16.tar.xz} -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/prev && cp -r $B /tmp/prev && mkdir -p /tmp/x && tar xJf ${OLD:-.dev/old16c.tar.xz} -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so /tmp/prev/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
echo "=== CUDA suites"; cuda_suites
for t in cuda_argmax_graph_test cuda_backend_test; do
  TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 90 $B/bin/$t --gtest_brief=1 > $OUT/$t.log 2>&1
  echo "$t rc=$? $(grep -E '^\[  PASSED' $OUT/$t.log)"
done
for m in attention-tc attention; do
  timeout 150 $B/bin/bench_cuda_kernels --$m > $OUT/kernels_$m.log 2>&1
  echo "bench_cuda_kernels --$m rc=$? $(grep -oE 'summary failures=[0-9]+' $OUT/kernels_$m.log | sort | uniq -c | tr '\n' ' ')"
done
timeout 200 $B/bin/cuda_gemm_lab --wgmma-only --wg-from=7 > $OUT/gemm_lab.log 2>&1
echo "cuda_gemm_lab rc=$? checks ok: $(grep -c ' ok$' $OUT/gemm_lab.log)"
grep -E "FAILED|differ|summary|mismatch" $OUT/gemm_lab.log | head -5
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 150 $B/bin/cuda_gemv_lab --quick > $OUT/gemv_lab.log 2>&1
echo "cuda_gemv_lab rc=$? same-bits lines: $(grep -ci 'same bits' $OUT/gemv_lab.log) $(grep -E 'checks failures' $OUT/gemv_lab.log)"
echo "  [t=$(( $(date +%s) - T0 )) s]"
ab() { local side=$1 d=$B; shift; [ $side = prev ] && d=/tmp/prev
  LD_LIBRARY_PATH=$d/lib timeout 150 $d/bin/engine "$@" 2>&1 | grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  i=0; while [ ! -f /tmp/$s.done ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
  for side in prev new; do d=$B; [ $side = prev ] && d=/tmp/prev
    LD_LIBRARY_PATH=$d/lib timeout 90 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side md5 $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12)"; done
  left || continue
  echo "=== $s  [t=$(( $(date +%s) - T0 )) s]"
  for r in 1 2; do for side in prev new; do
    ab $side bench --backend cuda /tmp/$s -p 2048 -n 0 -r 2
    ab $side --backend-opt cuda.matmul_precision=bf16 bench --backend cuda /tmp/$s -p 2048 -n 0 -r 2 | sed 's/pp2048/pp2048-bf16/'
    ab $side bench --backend cuda /tmp/$s -p 16 -n 128 -r 2
  done; done
  [ $s = llama-3.1-8b ] && left && for side in prev new; do ab $side bench --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 2; done
done
echo "total $(( $(date +%s) - T0 )) s"
