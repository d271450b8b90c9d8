#!/bin/bash
# Sibling-MATMUL fusion A/B (cpu-fuse13, 2026-11-27): whole-model decode, one engine build,
# TESSERA_CPU_FUSE_SIBLINGS=0 (A) vs default (B), interleaved A B B A per model and dtype, with
# uptime beside each run. FUSE13_MODELS, FUSE13_DTYPES: subsets.
# Usage: fuse13_abba.sh ENGINE MODELS_DIR [OUT_DIR] [ROUNDS]
set -u
E=${1:?engine}; D=${2:?models dir}; O=${3:-/tmp/fuse13_abba}; R=${4:-1}
mkdir -p "$O"
for m in ${FUSE13_MODELS:-qwen2.5-0.5b llama-3.2-1b}; do
  for q in ${FUSE13_DTYPES:-bf16 q8 q4}; do
    qa=""; [ "$q" != bf16 ] && qa="--quantize $q"
    for r in $(seq "$R"); do
      for v in 0 1 1 0; do
        u=$(uptime | sed 's/.*load average: //')
        line=$(TESSERA_CPU_FUSE_SIBLINGS=$v nice -n -19 "$E" bench "$D/$m" -p 0 -n 64 -r 3 -t 2 \
               $qa 2>&1 | grep '| tg64')
        tps=$(echo "$line" | awk -F'|' '{print $4}' | tr -d ' ')
        frac=$(echo "$line" | awk -F'|' '{print $6}' | tr -d ' ')
        echo "$m $q fuse=$v median_tps=$tps fraction=$frac load=[$u]" | tee -a "$O/abba.log"
      done
    done
  done
done
