#!/bin/bash
# ncu34_gpu.sh TAR: where the generic path's kernels wait (cu-gen34), for the next session: ncu
# warp states + per-instruction stall samples (gemv21_ncu.py) of the one-row Q8 and Q4 staged
# GEMVs (8B gate shape) and the Q8 M = 512 tile. TAR holds b/bin/bench_cuda_kernels and
# b/lib/libstdc++.so.6 (it needs nothing else). Writes $OUT/ncu34/*.
T=${1:?tar}
W=/tmp/ncu34; mkdir -p $W $OUT/ncu34; tar -C $W -xJf "$T"; export LD_LIBRARY_PATH=$W/b/lib
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
one() {  # NAME KERNEL_REGEX ARGS...
  local name=$1 k=$2; shift 2
  timeout 120 $NCU --clock-control none -k regex:$k --launch-skip 2 --launch-count 1 \
    --section SourceCounters --section WarpStateStats --section SpeedOfLight --section Occupancy \
    --section SchedulerStats --import-source no -f -o $W/$name $W/b/bin/bench_cuda_kernels --generic-one "$@" > $W/$name.log 2>&1
  echo "$name rc=$?"
  $NCU --import $W/$name.ncu-rep --page details > $OUT/ncu34/${name}_details.txt 2>&1
  $NCU --import $W/$name.ncu-rep --page source --csv --print-source sass > $W/${name}_source.csv 2>&1
  python3 backends/cuda/lab/gemv21_ncu.py $W/${name}_source.csv > $OUT/ncu34/${name}_stalls.txt 2>&1
  grep -E "^ +(Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Issue Slots Busy)" $OUT/ncu34/${name}_details.txt | tr -s ' '
  head -2 $OUT/ncu34/${name}_stalls.txt
}
one q8_gemv_8b_gate MatmulStaged 14336 4096 1 q8 -1
one q4_gemv_8b_gate MatmulStaged 14336 4096 1 q4 -1
one q8_tile_8b_gate MatmulStagedTile 14336 4096 512 q8 -1
