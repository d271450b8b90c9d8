#!/bin/bash
# pp512 A/B of the CPU plugin with the per-op profile (cpu-ppx13, thirteenth session): A = an old
# plugin folder, B = a build's; same engine. Three rounds of A B B A per model, the load beside
# each run; prints GET_ROWS' line (calls, total ms, share, us/call, GB/s, first call ms, ...),
# the bench's fraction and pp512 median.
#   backends/cpu/lab/ppx13_getrows_ab.sh BUILD_DIR OLD_PLUGIN_DIR [q8|q4|none]
set -u
BUILD=${1:?build dir}
A=${2:?folder holding the old libtessera_backend_cpu.so alone}
Q=${3:-q8}
E=$BUILD/bin/engine
B=$(cd "$BUILD/lib/tessera/backends" && pwd)
for round in 1 2 3; do
  for m in qwen2.5-0.5b llama-3.2-1b; do
    for s in A B B A; do
      d=$A
      [ "$s" = B ] && d=$B
      echo "== round $round $m $s $(uptime | sed 's/.*load/load/')"
      TESSERA_BACKEND_PATH=$d TESSERA_CPU_PROFILE=1 nice -n -19 timeout 300 "$E" bench \
        "build/bench-models/$m" -p 512 -n 0 -r 3 -t 2 --quantize "$Q" --json 2>&1 |
        grep -E "GET_ROWS large|cpu profile|^\{" |
        sed -E 's/^\{.*"fraction":([0-9.]+).*"median":([0-9.]+).*/fraction \1 median \2/'
    done
  done
done
