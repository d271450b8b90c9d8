#!/bin/bash
# Whole-model ABBA on the quiet box (thirteenth session, lead): A = HEAD e302fcc's engine (its
# libtessera_core: plain mmap of the weights) with HEAD's CPU plugin, B = this tree's engine and
# plugin. Every run starts from evicted weights (the checkpoint and the quantized caches, `dd
# iflag=nocache`), so its own faults decide the page cache's folios (cpu-tg13's weight_map.h).
# `engine bench M -p 512 -n 64 -r 3 -t 2 [--quantize Q]`: pp512 and tg64 with their fractions.
#   backends/cpu/lab/ab13_whole.sh [ROUNDS]   (A in .dev/ab13/a: eng/ (a HEAD engine bundle) +
#   libtessera_backend_cpu.so; B: build/perf/bin/engine + .dev/ab13/b/libtessera_backend_cpu.so)
cd /work/main
for round in $(seq ${1:-1}); do
  for MQ in ${CASES:-qwen2.5-0.5b:none llama-3.2-1b:none qwen2.5-0.5b:q8 qwen2.5-0.5b:q4 llama-3.2-1b:q8 llama-3.2-1b:q4}; do
    M=${MQ%:*}; Q=${MQ#*:}
    for D in a b b a; do
      E=build/perf/bin/engine; [ $D = a ] && E=.dev/ab13/a/eng/bin/engine
      for f in build/bench-models/$M/model.safetensors ~/.cache/tessera/quant/*; do
        dd if="$f" iflag=nocache count=0 status=none; done
      L=$(cut -d' ' -f1 /proc/loadavg)
      R=$(TESSERA_BACKEND_PATH=$PWD/.dev/ab13/$D nice -n -19 $E bench build/bench-models/$M \
          -p 512 -n 64 -r 3 -t 2 $([ $Q = none ] || echo --quantize $Q) 2>/dev/null | grep -E "pp512|tg64" | tr -s ' ' | tr '\n' ' ')
      echo "$(date +%H:%M:%S) r$round $M $Q $D load $L $R"
    done
  done
done
echo done
