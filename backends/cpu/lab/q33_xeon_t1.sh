#!/bin/bash
# q33_xeon_t1.sh BUNDLE_TAR ROUNDS: on the GPU machine's CPU (Intel Xeon, 16 cores), engine bench
# tg32 of the Qwen2.5-0.5B / Llama-3.2-1B bench checkpoints (made here by bench/make_checkpoint.py)
# in bf16 / q8 / q4 with the GEMV prefetches as prefetcht0 and prefetcht1
# (TESSERA_CPU_GEMV_PREFETCH_T1=0 / 1) alternating, on 2 threads (taskset -c 0,1; ROUNDS rounds) and on 16 (one round).
T=${1:?bundle tar}; R=${2:-2}
W=/tmp/q33; mkdir -p $W; tar -C $W -xJf "$T"; E=$W/bundle/bin/engine
lscpu | grep -E "Model name|^CPU\(s\)|L1d|L2|L3"
for m in qwen2.5-0.5b llama-3.2-1b; do python3 bench/make_checkpoint.py --shape $m --out $W/$m > /dev/null; done
for q in q8 q4; do for m in qwen2.5-0.5b llama-3.2-1b; do $E bench $W/$m --backend cpu -p 0 -n 1 -r 1 -t 2 --quantize $q > /dev/null 2>&1; done; done
for r in $(seq "$R"); do
  for t in 2 16; do
    [ "$t" = 16 ] && [ "$r" -gt 1 ] && continue
    for m in qwen2.5-0.5b llama-3.2-1b; do
      for q in bf16 q8 q4; do
        qa=(); [ "$q" != bf16 ] && qa=(--quantize "$q")
        for v in 0 1; do
          pin=(); [ "$t" = 2 ] && pin=(taskset -c 0,1)
          echo "$(date -u +%T) round $r t$t $m $q t1=$v: $(TESSERA_CPU_GEMV_PREFETCH_T1=$v "${pin[@]}" \
            $E bench $W/$m --backend cpu -p 0 -n 32 -r 3 -t $t "${qa[@]}" 2>&1 | grep '^| tg')"
        done
      done
    done
  done
done
