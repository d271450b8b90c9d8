#!/bin/bash
# Whole-model ABBA: A = HEAD's CPU plugin (.dev/cpu-bf16/a), B = this tree's (.dev/cpu-bf16/c).
cd /work/main
for round in ${ROUNDS:-3 4}; do
  for MQ in ${CASES:-qwen2.5-0.5b:none qwen2.5-0.5b:q8 llama-3.2-1b:q8}; do
    M=${MQ%:*}; Q=${MQ#*:}
    for D in a c c a; do
      L=$(uptime | sed 's/.*average: //')
      R=$(TESSERA_BACKEND_PATH=$PWD/.dev/cpu-bf16/$D nice -n -19 build/cpu-bf16/bin/engine bench \
          build/bench-models/$M -p 0 -n 64 -r 3 -t 2 $([ $Q = none ] || echo --quantize $Q) 2>/dev/null | grep -E "tg64")
      echo "$(date +%H:%M:%S) r$round $M $Q $D load $L $R"
    done
  done
done
echo done
