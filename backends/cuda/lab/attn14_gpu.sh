#!/bin/bash
# One GPU-machine call for the tensor-core prefill attention lab (cu-attn14, issue 5), from the
# repo root. Needs .dev/cu-attn14 carried: attn_tc_lab (built here, see attn_tc_lab.cu's header)
# and lib/ (HEAD's libtessera_cuda_kernels.a + libtessera_cuda_wgmma.a, to rebuild the lab there
# with the machine's nvcc if the carried binary does not start).
# Steps, each under `timeout`, none started past DEADLINE seconds:
#   1. attn_tc_lab --reps REPS: accuracy (float64 reference on sample rows, two input
#      distributions) and interleaved timings of the current kernel, B and the E variants on the
#      8B / 1B / 0.5B shapes (T = 2048 causal), bit checks of rows at other tile positions
#      (q_begin 5 / 1001 / T - 1, NW 4 vs 8)             -> $OUT/attn14_lab.log
#   2. torch sdpa bf16 (transformers' attention) on the same shapes, for scale
#                                                         -> $OUT/attn14_sdpa.log
# Usage (device tool): bash backends/cuda/lab/attn14_gpu.sh   (carry .dev/cu-attn14)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
L=.dev/cu-attn14
DEADLINE=${DEADLINE:-420}
T0=$(date +%s)
left() { [ $(($(date +%s) - T0)) -lt "$DEADLINE" ]; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader |
  tee "$OUT/attn14_device.log"

echo "=== attn_tc_lab $(date +%T)"
BIN=$L/attn_tc_lab
timeout 240 "$BIN" --reps "${REPS:-5}" > "$OUT/attn14_lab.log" 2>&1
rc=$?
echo "lab rc=$rc"
if [ $rc -ne 0 ] && ! grep -q "^time" "$OUT/attn14_lab.log" && left; then
  echo "=== rebuilding the lab with this machine's nvcc $(date +%T)"
  head -5 "$OUT/attn14_lab.log"
  timeout 150 nvcc -std=c++17 -arch=sm_90a -O3 -cudart static -I. -Iplugins-api/include \
    backends/cuda/lab/attn_tc_lab.cu $L/lib/libtessera_cuda_kernels.a \
    $L/lib/libtessera_cuda_wgmma.a -o /tmp/attn_tc_lab 2>&1 | tail -5
  BIN=/tmp/attn_tc_lab
  timeout 240 "$BIN" --reps "${REPS:-5}" > "$OUT/attn14_lab.log" 2>&1
  echo "lab (rebuilt) rc=$?"
fi
if [ "${RUNS:-2}" -ge 2 ] && left; then  # a second pass: the timings' repeatability
  timeout 120 "$BIN" --reps "${REPS:-5}" > "$OUT/attn14_lab2.log" 2>&1
  echo "lab pass 2 rc=$?"
  grep -E "^time" "$OUT/attn14_lab2.log" | sed -E 's/T=2048 //; s/^time/time2/'
fi
grep -E "^(device|time|bits)" "$OUT/attn14_lab.log" | sed -E 's/T=2048 //'
grep -E "^accuracy" "$OUT/attn14_lab.log" |
  grep -E "variant=(current|B_nw8|E33_nw8|E66_nw8|E31_nw8|E13_nw8|E33m_nw8|E66m_nw8) " |
  sed -E 's/T=2048 //; s/max_rel=[^ ]+ //; s/all_rows_maxdiff_vs_current/vs_cur/'

if [ "${SDPA:-1}" = 1 ] && left; then
  echo "=== torch sdpa bf16 $(date +%T)"
  PYTHONUNBUFFERED=1 timeout 90 python3 - > "$OUT/attn14_sdpa.log" 2>&1 <<'EOF'
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
print("torch", torch.__version__, torch.cuda.get_device_name(0))
T = 2048
def time_ms(fn, reps=5, iters=20):
    for _ in range(3): fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True); b = torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(iters): fn()
        b.record(); b.synchronize()
        ts.append(a.elapsed_time(b) / iters)
    ts.sort()
    return ts[len(ts) // 2]
for hq, hkv, d in [(32, 8, 128), (32, 8, 64), (14, 2, 64)]:
    flops = 4.0 * hq * d * T * (T + 1) / 2
    for dt in (torch.bfloat16, torch.float32):
        q = torch.rand(1, hq, T, d, device="cuda", dtype=dt) * 2 - 1
        k = torch.rand(1, hkv, T, d, device="cuda", dtype=dt) * 2 - 1
        v = torch.rand(1, hkv, T, d, device="cuda", dtype=dt) * 2 - 1
        kr, vr = k.repeat_interleave(hq // hkv, 1), v.repeat_interleave(hq // hkv, 1)
        cases = {
            "repeat_kv": lambda: F.scaled_dot_product_attention(q, kr, vr, is_causal=True),
            "enable_gqa": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
        }
        for name, fn in cases.items():
            try:
                ms = time_ms(fn)
                print(f"sdpa dtype={str(dt)[6:]} Hq={hq} Hkv={hkv} D={d} {name} ms={ms:.4f} TFLOP/s={flops / ms / 1e9:.1f}")
            except Exception as e:
                print(f"sdpa dtype={str(dt)[6:]} Hq={hq} Hkv={hkv} D={d} {name} failed: {str(e)[:120]}")
        if dt == torch.bfloat16:
            try:
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    ms = time_ms(cases["repeat_kv"])
                print(f"sdpa dtype=bfloat16 Hq={hq} Hkv={hkv} D={d} flash_forced ms={ms:.4f} TFLOP/s={flops / ms / 1e9:.1f}")
            except Exception as e:
                print(f"sdpa flash_forced failed: {str(e)[:120]}")
EOF
  echo "sdpa rc=$?"
  cat "$OUT/attn14_sdpa.log"
fi
echo "=== done $(date +%T), $(($(date +%s) - T0)) s"
