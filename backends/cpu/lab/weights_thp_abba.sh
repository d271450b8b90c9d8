#!/usr/bin/env bash
# Whole-model A/B of where decode's weights live (cpu-tg13, 2026-11-27, issue 8): engine A maps
# the checkpoint as HEAD e302fcc did (plain mmap), engine B through core/src/model/weight_map.h
# (2 MiB aligned, MADV_HUGEPAGE). Every run starts from an evicted checkpoint (dd iflag=nocache),
# so its own faults decide the page cache's folios, as after a reboot or DAMON's pageout; A B B A
# per round, `engine bench -p 0 -n 64 -r 3 -t 2`, tg64 with the probe fraction and uptime.
# Use a private copy of the model directory: eviction drops the file's page cache for everyone.
#
#   backends/cpu/lab/weights_thp_abba.sh ENGINE_A ENGINE_B MODEL_DIR [ROUNDS [bench args...]]
set -u
A=$1 B=$2 M=$3 R=${4:-2}
shift $(( $# < 4 ? $# : 4 ))
for r in $(seq "$R"); do
  for E in "$A" "$B" "$B" "$A"; do
    tag=$([ "$E" = "$A" ] && echo A || echo B)
    dd if="$M/model.safetensors" iflag=nocache count=0 status=none
    line=$(nice -n -19 timeout 300 "$E" bench "$M" -p 0 -n 64 -r 3 -t 2 "$@" 2>&1 | grep tg64)
    echo "$(date +%T) round $r $tag load $(uptime | sed 's/.*average: //') $line"
  done
done
