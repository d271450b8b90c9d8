#!/bin/bash
# cu-dattn19's GPU call (nineteenth session): the decode attention call's fixed latency. From the
# repo root, carrying .dev/cu-dattn19/bundle.tar.xz: HEAD df38488's bundle (.dev/bundle19: engine,
# CUDA tests, CPU plugin and its CUDA plugin = "old"; without the GEMM / GEMV labs and Vulkan)
# with bundle/new/ = this tree's stripped CUDA plugin and bench_cuda_kernels, this script,
# lab_common.sh and dattn19_ncu.py.
# Sides (all the same bits): old = HEAD's plugin (TESSERA_CUDA_ATTN_TC_DEC=4's tiles); d7 / d8 /
# d9 = this plugin with TESSERA_CUDA_ATTN_TC_DEC=7 (the prologue before the PDL wait: metadata,
# block-table offsets, L2 prefetch of the first chunks' K / V rows), 8 (7 + blocks without a
# chunk leave before the wait), 9 (8 + block 0's own chunk merged from registers, no cluster
# barrier for one-chunk tiles, no wait on the last one; the new default).
# Steps: lab `--attention-tc 2048` under the default (memcmp checks incl. the PDL poison checks,
# decode call times: null stream / PDL back to back / after a copy kernel, empty-launch floors),
# lab checks under DEC = 7, 8, 10; ncu of the decode call (HEAD's tiles and the new ones at 16 /
# 144 / 1024 keys, 8B and 0.5B heads); CUDA suites + graph replay; greedy 48-token md5 per side;
# tg128 (-p 16 -n 128 -r 2) interleaved, order alternating, 3 rounds a model.
# Run: `mkdir -p /tmp/dattn19 && tar xJf .dev/cu-dattn19/bundle.tar.xz -C /tmp/dattn19 &&
#   OUT=$OUT bash /tmp/dattn19/bundle/new/dattn19_gpu.sh`.
# One call (00:42 UTC 2026-11-28, H100, logs results/dattn19/), on the experiment tree: HEAD +
# results/dattn19/early_prologue_not_kept.diff (DEC = 7 .. 10, lab variant 22 = HEAD's tiles,
# 23 / 24 = the empty launches). Not kept (lab/NOTES.md "cu-dattn19"): the kept tree has only the
# empty launches (variants 22 / 23 there) and the lab's PDL checks / timings, so re-running this
# script as is needs that diff applied.
set -u
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/console.log") 2>&1
T0=$(date +%s)
DEADLINE=${DEADLINE:-210}
left() { [ $(($(date +%s) - T0)) -lt "$DEADLINE" ]; }
el() { echo "  [t=$(($(date +%s) - T0)) s]"; }
W=/tmp/dattn19
[ -d $W/bundle/bin ] || { mkdir -p $W && tar xJf .dev/cu-dattn19/bundle.tar.xz -C $W; }
B=$W/bundle
N=$B/new
export LD_LIBRARY_PATH=$B/lib
P=$W/newp/lib/tessera/backends
. $N/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf $W/newp && cp -r $B $W/newp && cp $N/libtessera_backend_cuda.so $P/
md5sum $B/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so
LAB=$N/bench_cuda_kernels
side_dir() { [ "$1" = old ] && echo $B || echo $W/newp; }
side_env() { case $1 in d*) echo TESSERA_CUDA_ATTN_TC_DEC=${1#d} ;; *) echo X_NONE=1 ;; esac; }
ab() {
  local side=$1 d
  d=$(side_dir "$1")
  shift
  env $(side_env "$side") LD_LIBRARY_PATH=$d/lib timeout 60 "$d/bin/engine" bench --backend cuda "$@" 2>&1 |
    grep -E "\| (tg|pp)|rror" | sed "s/^/    $side /"
}
waitck() { while [ ! -f "/tmp/$1.done" ]; do sleep 1; done; }
md5s() {
  local s=$1 side d
  shift
  waitck "$s"
  for side in "$@"; do
    d=$(side_dir "$side")
    env $(side_env "$side") LD_LIBRARY_PATH=$d/lib timeout 60 "$d/bin/engine" --backend cuda run "/tmp/$s" \
      "t1 t2 t3 t4" --raw -n 48 --temperature 0 2> /dev/null > "/tmp/run_${s}_$side.txt"
    echo "  $s $side rc=$? $(md5sum < "/tmp/run_${s}_$side.txt" | cut -c1-12) $(wc -c < "/tmp/run_${s}_$side.txt") bytes"
  done
}

echo "=== lab --attention-tc 2048, default knob (DEC=9): checks + times $(date +%T)"
timeout 120 $LAB --attention-tc 2048 > "$OUT/lab.log" 2>&1
echo "rc=$?"
grep -E "FAIL|summary|tc_decode_sweep|tc_decode_pdl|tc_decode_cases" "$OUT/lab.log" | head -20
echo "ok checks: $(grep -c ' ok$' "$OUT/lab.log")"
grep -E "^time attention_decode_paged" "$OUT/lab.log" | grep "round=1" | sed 's/time attention_decode_paged_//'
el
for m in 7 8 10; do
  echo "=== lab checks DEC=$m"
  TESSERA_CUDA_ATTN_TC_DEC=$m timeout 60 $LAB --attention-tc 2048 checks > /tmp/lab_checks$m.log 2>&1
  echo "rc=$? ok checks: $(grep -c ' ok$' /tmp/lab_checks$m.log)"
  grep -E "FAIL|summary|tc_decode_sweep|tc_decode_pdl" /tmp/lab_checks$m.log | head -8
  cat /tmp/lab_checks$m.log >> "$OUT/lab_checks.log"
done
el
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2> /dev/null | head -1)
echo "=== ncu ($NCU): decode calls, HEAD's tiles (22) then the new (13), 16 / 144 / 1024 keys, 32/8 D 128 then 14/2 D 64 $(date +%T)"
if [ -n "$NCU" ]; then
  timeout 100 "$NCU" --clock-control none -k regex:Kernel --section SourceCounters --section WarpStateStats \
    --section SpeedOfLight --section LaunchStats --section Occupancy --import-source no -f -o /tmp/ncu_dec \
    $LAB --attention-dec-ncu > /tmp/ncu_dec.log 2>&1
  echo "rc=$?"
  tail -3 /tmp/ncu_dec.log
  "$NCU" --import /tmp/ncu_dec.ncu-rep --page details > "$OUT/ncu_details.txt" 2>&1
  "$NCU" --import /tmp/ncu_dec.ncu-rep --page raw --csv > /tmp/ncu_raw.csv 2>&1
  "$NCU" --import /tmp/ncu_dec.ncu-rep --page source --csv --print-source sass > /tmp/ncu_source.csv 2>&1
  python3 $N/dattn19_ncu.py /tmp/ncu_raw.csv /tmp/ncu_source.csv > "$OUT/ncu_stalls.txt" 2>&1
  head -60 "$OUT/ncu_stalls.txt"
fi
el
echo "=== CUDA suites (new plugin, default)"
cuda_suites
echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
md5s qwen2.5-0.5b old d9 d8 d7
md5s llama-3.2-1b old d9 d8 d7
el
for r in 1 2 3; do
  case $r in 1 | 3) S="old d7 d8 d9" ;; 2) S="d9 d8 d7 old" ;; esac
  for s in llama-3.2-1b qwen2.5-0.5b; do
    echo "=== $s tg128 round $r ($S)"
    for side in $S; do ab $side /tmp/$s -p 16 -n 128 -r 2; done
  done
  el
done
md5s llama-3.1-8b old d9
el
for r in 1 2 3 4; do
  left || break
  case $r in 1 | 3) S="old d7 d9" ;; 2 | 4) S="d9 d7 old" ;; esac
  echo "=== llama-3.1-8b tg128 round $r ($S)"
  for side in $S; do ab $side /tmp/llama-3.1-8b -p 16 -n 128 -r 2; done
  el
done
echo "total $(($(date +%s) - T0)) s"
