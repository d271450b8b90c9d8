#!/bin/bash
# tg14_abba.sh: decode A/B of two CPU plugins in one engine, A B B A per round.
#
#   backends/cpu/lab/tg14_abba.sh ENGINE MODEL_DIR PLUGIN_DIR_A PLUGIN_DIR_B [ROUNDS] [flags...]
#
# Each run: TESSERA_BACKEND_PATH=DIR TESSERA_CPU_PROFILE=1 engine bench MODEL -p 0 -n 64 -r 3 -t 2
# [flags] (e.g. --quantize q8); prints tg64 t/s (mean, median), the run's probe, the fraction and,
# for plugins that have it, the profile's pool idle share (a profile costs ~1% of a token).
# RUN_PREFIX (default `nice -n -19`) wraps every run. On the shared 2-core dev box
# RUN_PREFIX="chrt -f 10" gives each run both CPUs (SCHED_FIFO: other tenants' builds wait; the
# kernel's RT throttling still leaves them 5%), so wall time means something while the load
# average is 5-13; memory bandwidth is still shared with the host's other VMs (the probe moved
# 39-65 GB/s). Keep such runs short: every other process on the box stalls while they run.
# cpu-tg14, 2026-11-27: docs/benchmarks.md, "CPU bf16 decode on the Llama shape".
# cpu-tg15: also the profile's steps' mean / median (what interruptions cost the run: under
# chrt the RT throttling stops each CPU ~50 ms a second, backends/cpu/lab/rt_gaps.cc).
set -u
ENGINE=$1 MODEL=$2 A=$3 B=$4 ROUNDS=${5:-2}
shift 4; [ $# -gt 0 ] && shift
PREFIX=${RUN_PREFIX:-nice -n -19}
one() {
  local dir=$1 l0 out; shift
  l0=$(cut -d' ' -f1 /proc/loadavg)
  out=$(TESSERA_BACKEND_PATH=$dir TESSERA_CPU_PROFILE=1 timeout 300 $PREFIX "$ENGINE" bench \
        "$MODEL" -p 0 -n 64 -r 3 -t 2 "$@" 2>&1)
  echo "$(date -u +%H:%M:%S) $(basename "$dir") load $l0 |$(echo "$out" | grep tg64 |
        awk -F'|' '{print $3 "|" $4 "|" $5 "|" $6}') $(echo "$out" | grep -o 'idle [0-9.]*%' |
        tail -1) $(echo "$out" | grep -o 'mean / median [0-9.]*')"
}
for r in $(seq "$ROUNDS"); do
  one "$A" "$@"; one "$B" "$@"; one "$B" "$@"; one "$A" "$@"
done
