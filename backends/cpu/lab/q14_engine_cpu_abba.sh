#!/bin/bash
# Whole-model A/B: engine bench (decode only) per A B B A round, two plugin directories
# (TESSERA_BACKEND_PATH), tg t/s and probe fraction per run, with the process's CPU seconds
# (user + sys) beside them. Note: the CPU seconds include the bench's bandwidth probe and the
# pool's spinning, which grow with other tenants' load, so they do not replace a quiet box
# (cpu-q14, 2026-11-27: under load 7-9 one B run took 13.3 CPU-s at 3 t/s, A 13.1 at 36 t/s).
# A = HEAD's plugin copied to a directory, B = this tree's build.
# usage: q14_engine_cpu_abba.sh ENGINE MODELS_DIR A_DIR B_DIR ROUNDS "model:quant ..." [N]
E=$1; M=$2; A=$3; B=$4; R=$5; CASES=$6; N=${7:-64}
for c in $CASES; do
  m=${c%%:*}; q=${c##*:}
  for r in $(seq "$R"); do
    for v in A B B A; do
      d=$A; [ "$v" = B ] && d=$B
      out=$(TESSERA_BACKEND_PATH=$d /usr/bin/time -f "cpu %U %S" nice -n -19 "$E" bench "$M/$m" \
              -p 0 -n "$N" -r 3 -t 2 --quantize "$q" 2>&1)
      tps=$(echo "$out" | grep -E "^\| tg" | awk -F'|' '{print $4}' | tr -d ' ')
      frac=$(echo "$out" | grep -E "^\| tg" | awk -F'|' '{print $6}' | tr -d ' ')
      cpu=$(echo "$out" | awk '/^cpu /{printf "%.2f", $2 + $3}')
      echo "$(date +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg) $m $q round $r $v: tg$N ${tps} t/s (fraction ${frac}), CPU ${cpu} s"
    done
  done
done
