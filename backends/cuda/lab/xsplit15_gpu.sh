#!/bin/bash
# cu-xsplit15's GPU call (fifteenth session; lab/NOTES.md "Prefill: one x split for q/k/v and
# gate/up, RMS_NORM / SWIGLU in it"), from the repo root: `DEADLINE=N bash
# backends/cuda/lab/xsplit15_gpu.sh`, carrying .dev/bundle.tar.gz (the lead's relocatable bundle:
# engine, tests, CPU plugin; its CUDA plugin is replaced by new/'s) and .dev/cu-xsplit15/x15.tar.xz
# (folder "x": new/ = this tree's CUDA plugin, head/ = HEAD c9614b5's (build/perf), cuda_gemm_lab
# built from this tree). Each side's plugins are picked with TESSERA_BACKEND_PATH=DIR (searched
# first); "new0" = the new plugin with TESSERA_CUDA_FUSE_PREFILL=0 (HEAD's prefill dispatch). No
# step starts past $DEADLINE s; logs in $OUT.
#   1. cuda_gemm_lab --prefillfuse: fused vs op kernel + LaunchGemmBf16, memcmp, at M = 2048 /
#      512 / 300, 3 and 1 pieces; cold-L2 times serial and with PDL (M = 2048)        -> lab.log
#   2. CUDA op conformance, text golden, server_scheduler_test on the new plugin     -> tests.log
#   3. greedy `engine run` of a ~300-token prompt, 32 tokens, md5 per side, exact (head / new /
#      new0) and bf16 (head / new), 0.5B and 1B                                        -> md5.log
#   4. engine bench -p 512 -n 0 -r 5 and -p 2048 -n 0 -r 3, exact and bf16, head / new / head /
#      new (8B: one pair)                                                            -> engine.log
# PHASE=2 (call 2): the suites again; greedy md5 (1B, exact) head / new / new2 (new2 = the new
# plugin with TESSERA_CUDA_FUSE_PREFILL=2: dead norm / SWIGLU outputs not stored, a lab level);
# the per-node profile of 8B pp2048 exact (TESSERA_CUDA_PROFILE=1, graphs off) head and new and
# the new plugin's refused fusions (TESSERA_CUDA_FUSE_DEBUG=1)                   -> profile.log;
# engine pp2048 8B exact / bf16, 1B exact, pp512 0.5B exact: head / new / new2 twice -> engine.log
set -u
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
T0=$(date +%s)
DEADLINE=${DEADLINE:-230}
late() {
  [ $(($(date +%s) - T0)) -gt "$DEADLINE" ] && echo "deadline: skipping $1" && return 0
  return 1
}
tar -xzf .dev/bundle.tar.gz -C .dev || exit 1
tar -xJf .dev/cu-xsplit15/x15.tar.xz -C .dev/cu-xsplit15 || exit 1
B=$PWD/.dev/bundle
X=$PWD/.dev/cu-xsplit15/x
P=$B/lib/tessera/backends
export LD_LIBRARY_PATH=$B/lib
E=$B/bin/engine
for s in new head; do cp "$P/libtessera_backend_cpu.so" "$X/$s/"; done
cp "$X/new/libtessera_backend_cuda.so" "$P/"  # the suites run the new plugin
. backends/cuda/lab/lab_common.sh  # make_checkpoints, cuda_suites
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
waitck() {
  local i=0
  while [ ! -f "/tmp/$1.done" ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
}
if [ "${PHASE:-1}" = 1 ]; then
  echo "=== lab --prefillfuse $(date +%T)"
  timeout 75 "$X/cuda_gemm_lab" --prefillfuse > "$OUT/lab.log" 2>&1
  echo "lab rc=$? same: $(grep -cE 'bits=same|h=same out=same|y=same out=same' "$OUT/lab.log")" \
    "DIFF: $(grep -c DIFF "$OUT/lab.log") not_fusable: $(grep -c not_fusable "$OUT/lab.log")"
  grep -E "summary|FAIL" "$OUT/lab.log" | head -5
fi
late suites || {
  echo "=== CUDA suites (new plugin) $(date +%T)"
  cuda_suites
}
# side NAME: the plugin folder and environment of side NAME.
run_side() {
  local side=$1
  shift
  local dir=$X/$side envs=""
  [ "$side" = new0 ] && dir=$X/new envs="TESSERA_CUDA_FUSE_PREFILL=0"
  [ "$side" = new2 ] && dir=$X/new envs="TESSERA_CUDA_FUSE_PREFILL=2"
  env $envs TESSERA_BACKEND_PATH="$dir" "$@"
}
PROMPT=$(seq -f "w%g" 1 300 | tr '\n' ' ')
# ebench SIDE ARGS...: engine bench with SIDE's CUDA plugin, the result rows.
ebench() {
  local side=$1
  shift
  run_side "$side" timeout 150 "$E" bench --backend cuda "$@" 2>&1 |
    grep -E "^\| (pp|tg)[0-9]|rror" | sed "s/^/    $side /"
}
if [ "${PHASE:-1}" = 2 ]; then
  waitck llama-3.2-1b
  for side in head new new2; do
    run_side $side timeout 60 "$E" --backend cuda run /tmp/llama-3.2-1b "$PROMPT" --raw -n 32 \
      --temperature 0 2> /dev/null > "/tmp/md5_$side.txt"
    echo "  llama-3.2-1b exact $side rc=$? $(md5sum < "/tmp/md5_$side.txt" | cut -c1-12)"
  done 2>&1 | tee "$OUT/md5.log"
  waitck llama-3.1-8b
  {
    for side in head new; do
      echo "=== 8B pp2048 exact per node, $side $(date +%T)"
      run_side $side env TESSERA_CUDA_PROFILE=1 TESSERA_CUDA_GRAPHS=0 TESSERA_CUDA_FUSE_DEBUG=1 \
        timeout 90 "$E" bench --backend cuda /tmp/llama-3.1-8b -p 2048 -n 0 -r 1 2>&1 |
        grep -E "cuda (profile|fuse)|^\| pp" | head -40
    done
  } > "$OUT/profile.log" 2>&1
  {
    for job in "llama-3.1-8b 2048 exact" "llama-3.1-8b 2048 bf16" "llama-3.2-1b 2048 exact" \
      "qwen2.5-0.5b 512 exact"; do
      set -- $job
      waitck "$1"
      late "engine $job" && break
      r=5
      [ "$2" = 2048 ] && r=3
      echo "--- $1 pp$2 $3 $(date +%T)"
      for side in head new new2 head new new2; do
        ebench $side "/tmp/$1" -p "$2" -n 0 -r $r --backend-opt "cuda.matmul_precision=$3"
      done
    done
  } 2>&1 | tee "$OUT/engine.log"
  echo "done $(($(date +%s) - T0)) s"
  exit 0
fi
{
  for s in qwen2.5-0.5b llama-3.2-1b; do
    waitck $s
    late "md5 $s" && break
    for prec in exact bf16; do
      sides="head new new0"
      [ $prec = bf16 ] && sides="head new"
      for side in $sides; do
        run_side $side timeout 60 "$E" --backend cuda --backend-opt "cuda.matmul_precision=$prec" \
          run "/tmp/$s" "$PROMPT" --raw -n 32 --temperature 0 2> "/tmp/md5_err_$side" \
          > "/tmp/md5_$side.txt"
        echo "  $s $prec $side rc=$? $(md5sum < "/tmp/md5_$side.txt" | cut -c1-12)" \
          "$(wc -w < "/tmp/md5_$side.txt") words"
      done
    done
  done
} 2>&1 | tee "$OUT/md5.log"
{
  for job in "qwen2.5-0.5b 512 exact" "llama-3.2-1b 512 exact" "qwen2.5-0.5b 2048 exact" \
    "llama-3.2-1b 2048 exact" "llama-3.1-8b 2048 exact" "llama-3.1-8b 512 exact" \
    "qwen2.5-0.5b 512 bf16" "llama-3.2-1b 512 bf16" "qwen2.5-0.5b 2048 bf16" \
    "llama-3.2-1b 2048 bf16" "llama-3.1-8b 2048 bf16" "llama-3.1-8b 512 bf16"; do
    set -- $job
    waitck "$1"
    late "engine $job" && break
    r=5
    [ "$2" = 2048 ] && r=3
    sides="head new head new"
    [ "$1" = llama-3.1-8b ] && sides="head new"
    echo "--- $1 pp$2 $3 $(date +%T)"
    for side in $sides; do
      ebench $side "/tmp/$1" -p "$2" -n 0 -r $r --backend-opt "cuda.matmul_precision=$3"
    done
  done
} 2>&1 | tee "$OUT/engine.log"
echo "done $(($(date +%s) - T0)) s"
