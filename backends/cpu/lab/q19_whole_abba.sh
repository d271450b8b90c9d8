#!/bin/bash
# Whole-model pp512 ABBA for the quantized paths (cpu-q19): pp17_whole_abba.sh with --quantize;
# one line per run: load average, then bench's pp512 row (t/s mean, sd, median, probe, fraction).
#   backends/cpu/lab/q19_whole_abba.sh ENGINE DIR_A DIR_B ROUNDS q8|q4|none [MODELS...]
E=${1:?engine}; A=${2:?plugin dir A}; B=${3:?plugin dir B}; R=${4:-1}; Q=${5:-q8}; shift 5
QA="--quantize $Q"; [ "$Q" = none ] && QA=""
for r in $(seq "$R"); do
  for M in ${*:-qwen2.5-0.5b llama-3.2-1b}; do
    for D in a b b a; do
      P=$A; [ $D = b ] && P=$B
      L=$(cut -d' ' -f1 /proc/loadavg)
      # shellcheck disable=SC2086  # QA: two words or none
      RES=$(TESSERA_BACKEND_PATH=$P nice -n -19 "$E" bench build/bench-models/$M -p 512 -n 0 -r 3 \
            -t 2 $QA 2>/dev/null | grep -E "pp512" | tr -s ' ')
      echo "$(date +%H:%M:%S) r$r $M $Q $D load $L $RES"
    done
  done
done
