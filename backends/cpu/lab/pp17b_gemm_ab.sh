#!/bin/bash
# cpu-pp17b: the bf16 GEMM (pp512, one thread) and GEMV (rows 1) A/B in one process per case
# (matmul_lab --ab: CPU ms paired). Usage: pp17b_gemm_ab.sh MATMUL_LAB A.so B.so ROUNDS [ROWS]
set -u
lab=$1 a=$2 b=$3 rounds=${4:-2} rows=${5:-512}
for r in $(seq "$rounds"); do
  for shape in qwen2.5-0.5b llama-3.2-1b; do
    for op in gate down q; do
      printf '%s round %s %s %s load %s: ' "$(date +%T)" "$r" "$shape" "$op" "$(cut -d' ' -f1 /proc/loadavg)"
      TESSERA_CPU_PLUGIN=$a nice -n -19 "$lab" --shape "$shape" --rows "$rows" --threads 1 --reps 6 \
        --only "$op" --ab --plugin-b "$b" 2>&1 | grep -o 'A/B:.*'
    done
  done
done
