#!/bin/bash
# Third batch-decode GPU call (measure): where a --parallel step's time goes. Engine bench with
# TESSERA_BENCH_STEP_TIMES=1 (host batch build vs Forward), TESSERA_CUDA_PROFILE=exec (GPU vs
# host time of the execute; downloads timed apart) and =1 (per op), graphs on/off, and the
# card's device-to-host copy rate (torch: pageable vs pinned) for the logits download.
B=.dev/bundle-cuda-batch
export LD_LIBRARY_PATH=$PWD/$B/lib
E=$PWD/$B/bin/engine
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
(for s in qwen2.5-0.5b llama-3.2-1b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; done; touch /tmp/ck.done) &
python3 - <<'PY'
import time, torch, numpy as np
n = 64 * 151936  # 0.5B logits of 64 rows (f32)
d = torch.randn(n, device="cuda")
for name, h in (("pageable", torch.empty(n)), ("pinned", torch.empty(n).pin_memory())):
    for _ in range(3): h.copy_(d); torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10): h.copy_(d); torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / 10
    print(f"d2h {name} {n*4/2**20:.1f} MiB: {dt*1e3:.3f} ms {n*4/dt/1e9:.1f} GB/s")
a = np.ones(n, np.float32); b = np.empty_like(a)
for _ in range(3): np.copyto(b, a)
t = time.perf_counter()
for _ in range(10): np.copyto(b, a)
dt = (time.perf_counter() - t) / 10
print(f"host memcpy {n*4/2**20:.1f} MiB: {dt*1e3:.3f} ms {n*4/dt/1e9:.1f} GB/s")
PY
while [ ! -f /tmp/ck.done ]; do sleep 1; done
for m in qwen2.5-0.5b llama-3.2-1b; do
  for par in 64 16; do
    echo "--- $m par$par"
    TESSERA_BENCH_STEP_TIMES=1 timeout 60 "$E" bench --backend cuda /tmp/$m -p 0 -n 32 -r 1 --parallel $par 2>&1 | grep -E "^\| tg|bench steps|error"
  done
  echo "--- $m par64 graphs off"
  TESSERA_CUDA_GRAPHS=0 TESSERA_BENCH_STEP_TIMES=1 timeout 60 "$E" bench --backend cuda /tmp/$m -p 0 -n 32 -r 1 --parallel 64 2>&1 | grep -E "^\| tg|bench steps|error"
  TESSERA_CUDA_PROFILE=exec TESSERA_BENCH_STEP_TIMES=1 timeout 60 "$E" bench --backend cuda /tmp/$m -p 0 -n 32 -r 1 --parallel 64 > "$OUT/exec_$m.log" 2>&1
  grep -E "cuda profile|bench steps" "$OUT/exec_$m.log"
  TESSERA_CUDA_PROFILE=1 timeout 60 "$E" bench --backend cuda /tmp/$m -p 0 -n 32 -r 1 --parallel 64 > "$OUT/ops_$m.log" 2>&1
  grep -E "cuda profile" "$OUT/ops_$m.log" | head -16
done
echo "=== end"
