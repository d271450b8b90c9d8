#!/bin/bash
# Two-thread scaling of the int8 GEMM beside the vpdpbusd probe (cpu-q20, 2026-11-28, issue 8):
# per iteration the probe (1 and 2 threads), then qgemm_drv (operand-packed q8 weights, M = 512,
# activation rows aligned) on 1 and 2 threads for the prefill shapes Qwen gate (K 896 N 4864),
# Qwen down (K 4864 N 896), Llama gate (K 2048 N 8192) and Llama down (K 8192 N 2048), wall
# GOP/s, then the probe again. Read a line only where the two probes agree; the 2-thread GEMM is
# worth comparing with the 1-thread one only where the 2-thread probe is twice the 1-thread one.
#   backends/cpu/lab/q20_scaling.sh PROBE DRIVER ITERATIONS
#   (PROBE: build/perf/bin/machine_probe; DRIVER: qgemm_drv built as its header says)
P=${1:?machine_probe}; D=${2:?qgemm_drv}; N=${3:-4}
export ACT_MISALIGN=0
probe() {
  nice -n -19 "$P" --mib 16 --reps 3 2>&1 | grep -o 'vpdpbusd [0-9.]*' | cut -d' ' -f2 | tr '\n' ' '
}
for _ in $(seq "$N"); do
  p1=$(probe)
  l=""
  for sh in "512 896 4864 4" "512 4864 896 4" "512 2048 8192 1" "512 8192 2048 1"; do
    for t in 1 2; do
      # shellcheck disable=SC2086  # the shape's words
      l="$l $(nice -n -19 "$D" $sh 3 q8 $t | grep -o '(\S* GOP/s' | tr -d '(' | cut -d' ' -f1)"
    done
  done
  echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) probe 1t 2t: $p1|" \
    "1t 2t GOP/s: qwen gate, down, llama gate, down:$l | probe: $(probe)"
done
