#!/bin/bash
# q21_late_ab.sh PROBE DRIVER ROUNDS: the 3 x 4 int8 GEMM tiles with their output rows stored one
# tile late (TESSERA_CPU_QGEMM_LATE=1) vs at the tile's end (=0; DRIVER = qgemm_drv built against
# the kernel with int8_late_stores_not_kept.diff applied, see qgemm_drv.cc), one thread, on
# the four prefill shapes (M = 512: Qwen2.5-0.5B gate 896 x 4864 and down 4864 x 896, Llama-3.2-1B
# gate 2048 x 8192 and down 8192 x 2048), q8 and q4, interleaved (qgemm_ab.sh: medians of the
# runs' best int8 GOP per CPU-second), with the one-thread probe and the load before each shape.
#   backends/cpu/lab/q21_late_ab.sh build/perf/bin/machine_probe /tmp/qgemm_drv 10
PROBE=$1
DRV=$2
R=${3:-10}
D=$(dirname "$0")
for q in q8 q4; do
  for sh in "896 4864" "4864 896" "2048 8192" "8192 2048"; do
    echo "== M 512 K x N $sh $q; $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg);" \
      "probe 1t 2t: $(nice -n -19 "$PROBE" --mib 16 --reps 3 2>&1 | grep -o 'vpdpbusd [0-9.]*' | cut -d' ' -f2 | tr '\n' ' ')"
    "$D/qgemm_ab.sh" "$R" "512 $sh 1 5 $q 1" \
      late0 "TESSERA_CPU_QGEMM_LATE=0 $DRV" late1 "TESSERA_CPU_QGEMM_LATE=1 $DRV"
  done
done
