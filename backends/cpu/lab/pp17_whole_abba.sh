#!/bin/bash
# Whole-model pp512 ABBA (cpu-pp17): ab14_whole.sh without the page-cache eviction (the shared
# checkpoints stay cached for both sides; evicting them is global on a shared box), bf16 only.
#   backends/cpu/lab/pp17_whole_abba.sh ENGINE DIR_A DIR_B [ROUNDS] [MODELS...]
E=${1:?engine}; A=${2:?plugin dir A}; B=${3:?plugin dir B}; R=${4:-1}; shift 4
for r in $(seq $R); do
  for M in ${*:-qwen2.5-0.5b llama-3.2-1b}; do
    for D in a b b a; do
      P=$A; [ $D = b ] && P=$B
      L=$(cut -d' ' -f1 /proc/loadavg)
      RES=$(TESSERA_BACKEND_PATH=$P nice -n -19 $E bench build/bench-models/$M -p 512 -n 0 -r 3 -t 2 \
            2>/dev/null | grep -E "pp512" | tr -s ' ')
      echo "$(date +%H:%M:%S) r$r $M $D load $L $RES"
    done
  done
done
