#!/bin/bash
# Whole-model ABBA on the quiet box: A = HEAD 4579911's CPU plugin, B = this tree's.
cd /work/main
for round in 1 2; do
  for MQ in ${CASES:-qwen2.5-0.5b:q8 qwen2.5-0.5b:q4 llama-3.2-1b:q8 llama-3.2-1b:q4 qwen2.5-0.5b:none llama-3.2-1b:none}; do
    M=${MQ%:*}; Q=${MQ#*:}
    for D in a b b a; do
      L=$(cut -d' ' -f1 /proc/loadavg)
      R=$(TESSERA_BACKEND_PATH=$PWD/.dev/ab12/$D nice -n -19 build/perf/bin/engine bench \
          build/bench-models/$M -p 512 -n 0 -r 3 -t 2 $([ $Q = none ] || echo --quantize $Q) 2>/dev/null | grep -E "pp512" | tr -s ' ')
      echo "$(date +%H:%M:%S) r$round $M $Q $D load $L $R"
    done
  done
done
echo done
