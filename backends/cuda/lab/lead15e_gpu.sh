#!/bin/bash
# The lead's last GPU calls of the fifteenth session: after moving OptinSmem (k_attention.cu, then
# smem_optin.h with CurrentDeviceAttr) and
# the batch-decode tables into shared helpers (bench_cuda_kernels.cc), the CUDA suites, the
# attention bit checks and greedy md5 against HEAD 0441dff's plugin.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b
tar xzf .dev/bundle.tar.gz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/head && cp -r $B /tmp/head && mkdir -p /tmp/x && tar xJf .dev/old15.tar.xz -C /tmp/x &&
  cp /tmp/x/libtessera_backend_cuda.so /tmp/head/lib/tessera/backends/
echo "=== CUDA suites"; cuda_suites
for m in attention-tc attention; do
  timeout 120 $B/bin/bench_cuda_kernels --$m > $OUT/kernels_$m.log 2>&1
  echo "bench_cuda_kernels --$m rc=$?"; grep -E "summary|FAIL|^accuracy|batch_decode" $OUT/kernels_$m.log | head -12
done
for s in qwen2.5-0.5b llama-3.2-1b; do
  i=0; while [ ! -f /tmp/$s.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done
  for side in head new; do d=$B; [ $side = head ] && d=/tmp/head
    LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12)"
  done
done
