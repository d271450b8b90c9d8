#!/bin/bash
# Per-op prefill profile, plugins A and B interleaved A B B A (cpu-pp17): `engine bench M -p 512
# -n 0 -r 3 -t 2` with TESSERA_CPU_PROFILE=1, one line per run: load, pp512 t/s, fraction, and
# the ms a call of the prefill ops (total over the timed and warm-up calls / calls).
#   backends/cpu/lab/pp17_profile_abba.sh ENGINE DIR_A DIR_B [ROUNDS] [MODELS...]
E=${1:?engine}; A=${2:?plugin dir A}; B=${3:?plugin dir B}; R=${4:-1}; shift 4
MODELS=${*:-qwen2.5-0.5b llama-3.2-1b}
for r in $(seq $R); do
  for M in $MODELS; do
    for D in a b b a; do
      P=$A; [ $D = b ] && P=$B
      L=$(cut -d' ' -f1 /proc/loadavg)
      OUT=$(TESSERA_CPU_PROFILE=1 TESSERA_BACKEND_PATH=$P nice -n -19 $E bench build/bench-models/$M \
            -p 512 -n 0 -r 3 -t 2 2>&1)
      PP=$(echo "$OUT" | grep "pp512" | tr -s ' ' | cut -d'|' -f4,6 | tr -d ' ' | tr '|' ' ')
      OPS=$(echo "$OUT" | awk '/^(MATMUL M=512|PAGED_ATTENTION large|SWIGLU large)/ {
              n=$0; sub(/ +[0-9]+ +[0-9.]+ +[0-9.]+%.*/, "", n); gsub(/MATMUL M=512 /, "", n);
              gsub(/ bf16/, "", n); gsub(/ large/, "", n); gsub(/PAGED_ATTENTION/, "attn", n);
              for (i = 1; i <= NF; i++) if ($i ~ /%$/) { printf "%s %.2f  ", n, $(i+1) / 1000; break } }')
      echo "$(date +%H:%M:%S) r$r $M $D load $L pp512 $PP | $OPS"
    done
  done
done
