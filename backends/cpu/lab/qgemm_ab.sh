#!/bin/bash
# qgemm_ab.sh ROUNDS "DRIVER ARGS" LABEL1 "ENV... BINARY1" LABEL2 "ENV... BINARY2" ...: runs each
# variant of backends/cpu/lab/qgemm_drv.cc once per round, interleaved (a shared box's load hits
# them alike), under nice -n -19 with the activation rows aligned; prints per label the median and
# the max of the runs' best int8 GOP per CPU-second, and every run's value in round order.
#   backends/cpu/lab/qgemm_ab.sh 5 "512 4864 896 8 3 q8 1" head "/tmp/a/drv" b "X=1 /tmp/b/drv"
R=$1
ARGS=$2
shift 2
declare -a L C
while [ $# -gt 0 ]; do
  L+=("$1")
  C+=("$2")
  shift 2
done
for ((r = 0; r < R; r++)); do
  for ((i = 0; i < ${#L[@]}; i++)); do
    # shellcheck disable=SC2086  # the command's words (env assignments, binary) split on purpose
    v=$(ACT_MISALIGN=0 nice -n -19 env ${C[$i]} $ARGS | grep -o "best [0-9.]*" | head -1 | cut -d' ' -f2)
    echo "${L[$i]} $v"
  done
done | python3 -c '
import sys, statistics as st
d = {}
for line in sys.stdin:
    k, v = line.split()
    d.setdefault(k, []).append(float(v))
for k, v in d.items():
    print(f"{k:12s} med {st.median(v):6.1f} max {max(v):6.1f} : " + " ".join(f"{x:.0f}" for x in v))'
