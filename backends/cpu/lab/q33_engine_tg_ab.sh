#!/bin/bash
# q33_engine_tg_ab.sh OLD_DIR NEW_DIR ROUNDS: engine bench tg64 (-r 3 -t 2) of the Qwen2.5-0.5B and
# Llama-3.2-1B bench checkpoints in bf16 / q8 / q4, the CPU plugin of OLD_DIR and NEW_DIR
# (TESSERA_BACKEND_PATH) alternating run by run, ROUNDS rounds.
#   backends/cpu/lab/q33_engine_tg_ab.sh /tmp/pf/base /tmp/pf/new 3
A=${1:?old plugin dir}; B=${2:?new plugin dir}; R=${3:-3}
for r in $(seq "$R"); do
  for m in qwen2.5-0.5b llama-3.2-1b; do
    for q in bf16 q8 q4; do
      qa=(); [ "$q" != bf16 ] && qa=(--quantize "$q")
      for d in "$A" "$B"; do
        echo "$(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg) round $r $m $q $d: $(TESSERA_BACKEND_PATH=$d \
          timeout 300 nice -n -19 build/perf/bin/engine bench build/bench-models/$m -p 0 -n 64 -r 3 -t 2 \
          "${qa[@]}" 2>&1 | grep '^| tg')"
      done
    done
  done
done
