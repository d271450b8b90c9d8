#!/bin/bash
# Runs on the GPU machine from the repo root against a relocatable bundle in .dev/cuda-bundle
# (see README.md): engine devices -v, the op-conformance suite, cuda_backend_test, the kernel
# bench and a PyTorch yardstick. Logs go to $OUT.
B=${TESSERA_BUNDLE:-.dev/cuda-bundle}
export LD_LIBRARY_PATH=$PWD/$B/lib
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
echo "=== engine devices -v"
$B/bin/engine devices -v 2>&1 | head -40
echo "=== conformance"
TESSERA_CONFORMANCE_PLUGINS=$PWD/$B/lib/tessera/backends/libtessera_backend_cuda.so \
  timeout 150 $B/bin/op_conformance_test --gtest_brief=1 --gtest_output=xml:$OUT/conformance.xml \
  > $OUT/conformance.log 2>&1
echo "conformance rc=$?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests ran|FAILED TEST|Failure|error" $OUT/conformance.log | head -60
grep -c "SKIPPED" $OUT/conformance.log
echo "=== cuda_backend_test"; TESSERA_CUDA_PLUGIN=$PWD/$B/lib/tessera/backends/libtessera_backend_cuda.so $B/bin/cuda_backend_test 2>&1 | grep -E "device 0|PASSED|FAILED"
echo "=== bench"
timeout 180 $B/bin/bench_cuda_kernels ${BENCH_ARGS:-} 2>&1 | tee $OUT/bench.log
echo "=== torch yardstick"
timeout 60 python3 - <<'PY' 2>&1 | tail -5
import torch, time
a = torch.randn(2048, 4096, device="cuda", dtype=torch.bfloat16)
b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
for _ in range(3): a @ b.T
torch.cuda.synchronize()
s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
s.record()
for _ in range(20): a @ b.T
e.record(); torch.cuda.synchronize()
ms = s.elapsed_time(e) / 20
print(f"torch_bf16_gemm M=2048 N=4096 K=4096 ms={ms:.3f} TFLOP/s={2*2048*4096*4096/ms/1e9:.1f}")
w = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16); x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
ws = [w.clone() for _ in range(8)]
for i in range(3): x @ ws[i].T
torch.cuda.synchronize(); s.record()
for i in range(80): x @ ws[i % 8].T
e.record(); torch.cuda.synchronize(); ms = s.elapsed_time(e) / 80
print(f"torch_bf16_gemv N=4096 K=4096 us={ms*1e3:.1f} GB/s={4096*4096*2/ms/1e6:.0f}")
PY
