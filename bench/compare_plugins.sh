#!/bin/bash
# Interleaved before/after runs of `engine bench` with one engine binary and two CPU plugin
# builds (selected through TESSERA_BACKEND_PATH), for each weight mode:
#   bench/compare_plugins.sh ENGINE MODEL ROUNDS OUTDIR PLUGIN_DIR_A PLUGIN_DIR_B [MODES]
# MODES: space-separated list of none, q8, q4 (default "none q8 q4"). Each round runs A then B
# (B then A on odd rounds) for every mode: pp512 + tg128, 3 repetitions, 2 threads, JSON Lines
# in OUTDIR/{a,b}_MODE.jsonl. Summarize with bench/summarize.py OUTDIR/a_none.jsonl ...
# Set NICE=-19 (root) to keep other tenants' time slices out of the runs on a shared box.
set -euo pipefail
engine=$1; model=$2; rounds=$3; out=$4; a=$5; b=$6; modes=${7:-"none q8 q4"}
mkdir -p "$out"
run() {  # run LABEL PLUGIN_DIR MODE
  local q=()
  [[ $3 != none ]] && q=(--quantize "$3")
  TESSERA_BACKEND_PATH=$2 nice -n "${NICE:-0}" "$engine" bench "$model" -p 512 -n 128 -r 3 -t 2 \
    "${q[@]}" --json 2>/dev/null >> "$out/$1_$3.jsonl"
}
for r in $(seq 1 "$rounds"); do
  for m in $modes; do
    if (( r % 2 )); then run a "$a" "$m"; run b "$b" "$m"; else run b "$b" "$m"; run a "$a" "$m"; fi
  done
  echo "round $r done: $(uptime)" >&2
done
