#!/bin/bash
# Whole-model ABBA on the quiet box (fourteenth session, lead; AB=.dev/ab15 in the fifteenth): A =
# HEAD's CPU plugin (035ab10 then, 0441dff in the fifteenth), B = this tree's, both under this
# tree's engine. Every run starts from
# evicted weights (the checkpoint and the quantized caches, `dd iflag=nocache`), so its own faults
# decide the page cache's folios (weight_map.h). `engine bench M -p 512 -n 64 -r 3 -t 2
# [--quantize Q]`: pp512 and tg64 with their fractions.
#   [AB=DIR] [CASES="M:Q ..."] backends/cpu/lab/ab14_whole.sh [ROUNDS]   (plugins in DIR/a and DIR/b,
#   DIR = .dev/ab14 unless set)
cd /work/main
AB=${AB:-.dev/ab14}
for round in $(seq ${1:-1}); do
  for MQ in ${CASES:-qwen2.5-0.5b:none llama-3.2-1b:none qwen2.5-0.5b:q8 qwen2.5-0.5b:q4 llama-3.2-1b:q8 llama-3.2-1b:q4}; do
    M=${MQ%:*}; Q=${MQ#*:}
    for D in a b b a; do
      for f in build/bench-models/$M/model.safetensors ~/.cache/tessera/quant/*; do
        dd if="$f" iflag=nocache count=0 status=none; done
      L=$(cut -d' ' -f1 /proc/loadavg)
      R=$(TESSERA_BACKEND_PATH=$PWD/$AB/$D nice -n -19 build/perf/bin/engine bench build/bench-models/$M \
          -p 512 -n 64 -r 3 -t 2 $([ $Q = none ] || echo --quantize $Q) 2>/dev/null | grep -E "pp512|tg64" | tr -s ' ' | tr '\n' ' ')
      echo "$(date +%H:%M:%S) r$round $M $Q $D load $L $R"
    done
  done
done
echo done
