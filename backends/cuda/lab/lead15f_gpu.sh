#!/bin/bash
# The lead's check of the review pass (fifteenth session): one LaunchClusterK (dev_common.cuh) for
# the cluster launches of the attention tiles and the TMA GEMM, PagedKvCache in
# bench_cuda_kernels. Against the plugin before it (.dev/prev15.tar.xz): CUDA suites, attention
# bit checks, the GEMM lab's GEMV-vs-GEMM bit checks, greedy md5, pp2048 / tg128 / x64 on 1B / 8B.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s)
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
tar xzf .dev/bundle.tar.gz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/prev && cp -r $B /tmp/prev && mkdir -p /tmp/x && tar xJf .dev/prev15.tar.xz -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so /tmp/prev/lib/tessera/backends/
echo "=== CUDA suites"; cuda_suites
for m in attention-tc attention; do
  timeout 120 $B/bin/bench_cuda_kernels --$m > $OUT/kernels_$m.log 2>&1
  echo "bench_cuda_kernels --$m rc=$? $(grep -E summary $OUT/kernels_$m.log)"
done
timeout 150 $B/bin/cuda_gemm_lab --wgmma-only --wg-from=7 > $OUT/gemm_lab.log 2>&1
echo "cuda_gemm_lab rc=$? checks ok: $(grep -c ' ok$' $OUT/gemm_lab.log)"; grep -E "FAILED|differ|summary" $OUT/gemm_lab.log | head -5
echo "  [t=$(( $(date +%s) - T0 )) s]"
ab() { local side=$1 d=$B; shift; [ $side = prev ] && d=/tmp/prev
  LD_LIBRARY_PATH=$d/lib timeout 150 $d/bin/engine bench --backend cuda "$@" 2>&1 | grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"; }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  i=0; while [ ! -f /tmp/$s.done ] && [ $i -lt 200 ]; do sleep 1; i=$((i + 1)); done
  if [ $s != llama-3.1-8b ]; then for side in prev new; do d=$B; [ $side = prev ] && d=/tmp/prev
    LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side md5 $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12)"; done; fi
  [ $s = qwen2.5-0.5b ] && continue
  echo "=== $s"
  for side in prev new; do ab $side /tmp/$s -p 2048 -n 0 -r 2; ab $side /tmp/$s -p 16 -n 128 -r 2; done
  [ $s = llama-3.1-8b ] && for side in prev new; do ab $side /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 2; done
done
echo "total $(( $(date +%s) - T0 )) s"
