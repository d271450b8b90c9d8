#!/bin/bash
# ncu35_gpu.sh TAR: where the decode-batch (x64) TMA tiles wait (thirty-fifth session): ncu of the
# 8B gate/up wide group (GemmTmaGroupKernel, 112 CTAs of 256 rows x 64 tokens, three pieces) and
# of the 8B down's split tile (GemmTmaKernel), from `cuda_gemm_lab --group` at M = 64. TAR holds
# b/bin/cuda_gemm_lab and b/lib/libstdc++.so.6. Writes $OUT/ncu35/*.
T=${1:?tar}
W=/tmp/ncu35; mkdir -p $W $OUT/ncu35; tar -C $W -xJf "$T"; export LD_LIBRARY_PATH=$W/b/lib
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
one() {  # NAME SHAPE KERNEL_REGEX SKIP
  local name=$1 shape=$2 k=$3 skip=$4
  TESSERA_LAB_SHAPES=$shape TESSERA_LAB_TERMS=3 timeout 150 $NCU --clock-control none \
    -k regex:$k --launch-skip $skip --launch-count 1 \
    --section SourceCounters --section WarpStateStats --section SpeedOfLight \
    --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables \
    --section LaunchStats --section SchedulerStats --import-source no -f -o $W/$name \
    $W/b/bin/cuda_gemm_lab --group > $W/$name.log 2>&1
  echo "$name rc=$?"
  $NCU --import $W/$name.ncu-rep --page details > $OUT/ncu35/${name}_details.txt 2>&1
  $NCU --import $W/$name.ncu-rep --page source --csv --print-source sass > $W/${name}_source.csv 2>&1
  python3 backends/cuda/lab/gemv21_ncu.py $W/${name}_source.csv > $OUT/ncu35/${name}_stalls.txt 2>&1
  grep -E "^ +(Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Memory Throughput|Compute \(SM\) Throughput|Grid Size|Registers Per|Issue Slots Busy|Shared Memory)" \
    $OUT/ncu35/${name}_details.txt | tr -s ' '
  head -12 $OUT/ncu35/${name}_stalls.txt
}
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
TESSERA_LAB_SHAPES=8B.gateup TESSERA_LAB_TERMS=3 timeout 100 $W/b/bin/cuda_gemm_lab --group 2>&1 | tail -12
one gateup_wide 8B.gateup GemmTmaGroupKernel 0
one gateup_wide2 8B.gateup GemmTmaGroupKernel 3
one down_split 8B.down GemmTmaKernel 0
