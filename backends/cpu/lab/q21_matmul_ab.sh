#!/bin/bash
# q21_matmul_ab.sh PLUGIN_A PLUGIN_B REPS: matmul_lab's paired A/B (one process, A and B passes
# alternating) of the int8 prefill GEMMs on one thread, M = 512, operand-packed weights
# (--repack, engine layout): Qwen2.5-0.5B gate / down and Llama-3.2-1B gate / down, q8 and q4.
#   backends/cpu/lab/q21_matmul_ab.sh .dev/old21/libtessera_backend_cpu.so B/libtessera_backend_cpu.so 20
A=${1:?plugin A}; B=${2:?plugin B}; R=${3:-20}
for q in q8 q4; do
  for s in qwen2.5-0.5b llama-3.2-1b; do
    for o in gate down; do
      echo "$(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg) $s $q $o: $(TESSERA_CPU_PLUGIN=$A \
        timeout 300 nice -n -19 build/perf/bin/matmul_lab --shape $s --rows 512 --threads 1 \
        --reps "$R" --dtype $q --only $o --no-head --repack --layout engine --ab --plugin-b "$B" \
        2>&1 | grep 'A/B' | sed 's/.*A\/B: //')"
    done
  done
done
