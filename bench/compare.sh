#!/bin/bash
# Interleaved before/after runs of `engine bench`: bench/compare.sh MODEL ROUNDS OUTDIR ENGINE...
# Each round runs every engine once (pp512 + tg128, 3 repetitions, 2 threads, JSON Lines) so
# the engines see the same machine load; compare the medians across rounds.
set -euo pipefail
model=$1; rounds=$2; out=$3; shift 3
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  i=0
  for e in "$@"; do
    "$e" bench "$model" -p 512 -n 128 -r 3 -t 2 --json 2>/dev/null >> "$out/engine$i.jsonl"
    i=$((i + 1))
  done
done
