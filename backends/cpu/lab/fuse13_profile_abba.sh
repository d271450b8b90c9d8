#!/bin/bash
# Sibling-MATMUL fusion, per-op view (cpu-fuse13, 2026-11-27): TESSERA_CPU_PROFILE=1 decode,
# TESSERA_CPU_FUSE_SIBLINGS=0 (A) vs default (B), A B B A per model and dtype: ms per token of
# all ops, of the MATMULs, tg64 t/s, uptime. FUSE13_MODELS, FUSE13_DTYPES: subsets.
# Usage: fuse13_profile_abba.sh ENGINE MODELS_DIR [OUT]
set -u
E=${1:?engine}; D=${2:?models dir}; O=${3:-/tmp/fuse13_prof}
mkdir -p "$O"
for m in ${FUSE13_MODELS:-qwen2.5-0.5b llama-3.2-1b}; do
  for q in ${FUSE13_DTYPES:-bf16 q8 q4}; do
    qa=""; [ "$q" != bf16 ] && qa="--quantize $q"
    for v in 0 1 1 0; do
      u=$(uptime | sed 's/.*load average: //')
      f="$O/${m}_${q}_$v.$RANDOM.log"
      TESSERA_CPU_FUSE_SIBLINGS=$v TESSERA_CPU_PROFILE=1 nice -n -19 "$E" bench "$D/$m" -p 0 \
        -n 64 -r 2 -t 2 $qa > "$f" 2>&1
      calls=$(grep -o '[0-9]* execute calls' "$f" | awk '{print $1}')
      ops=$(grep -o 'ops [0-9.]* s' "$f" | awk '{print $2}')
      mm=$(awk '/^MATMUL M=1 /{s+=$(NF-5)} END{print s}' "$f")
      tps=$(grep '| tg64' "$f" | awk -F'|' '{print $4}' | tr -d ' ')
      printf '%s %s fuse=%s ops_ms_per_tok=%.2f matmul_ms_per_tok=%.2f tps=%s load=[%s]\n' \
        "$m" "$q" "$v" "$(echo "$ops * 1000 / $calls" | bc -l)" "$(echo "$mm / $calls" | bc -l)" \
        "$tps" "$u" | tee -a "$O/prof.log"
    done
  done
done
