#!/bin/bash
# cu29-ring: the standalone TMA-ring probe (lab/ring29_probe.cu; build: nvcc -O3 -std=c++20 -I.
# -Iplugins-api/include -arch=sm_90a -o .dev/r29/ring29_probe backends/cuda/lab/ring29_probe.cu). RING_ONLY=name limits
# the per-shape sweep (default: none, only the layer chain). Calls 2-5.
#   run(command="RING_ONLY=8B-o bash backends/cuda/lab/ring29_probe_gpu.sh", carry=[".dev/r29"])
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
RING_ONLY=${RING_ONLY:-none} timeout 90 .dev/r29/ring29_probe 30 2>&1 | grep -v "mode=1\|mode=4\|mode=3" | tee $OUT/ring.txt
echo "rc=${PIPESTATUS[0]}"
