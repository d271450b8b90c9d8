#!/bin/bash
# cu-gemm15's GPU calls (fifteenth session; lab/NOTES.md "Prefill GEMM, fifteenth session"), from
# the repo root: `tar -xJf .dev/cu-gemm15/gemm15.tar.xz -C .dev/cu-gemm15 && [PHASE=2] DEADLINE=N
# bash .dev/cu-gemm15/g/gemm15_gpu.sh`, carrying .dev/bundle.tar.gz (a relocatable bundle: engine,
# core, CPU plugin; its CUDA plugin unused) and .dev/cu-gemm15/gemm15.tar.xz (folder "g": new/ =
# this tree's CUDA plugin, old/ = HEAD 0441dff's from .dev/old15.tar.xz, each with HEAD's CPU
# plugin; cuda_gemm_lab built from this tree; this script). Each side's plugins are picked with
# TESSERA_BACKEND_PATH=DIR (searched first). No step starts past $DEADLINE s; logs in $OUT.
#   1. cuda_gemm_lab --wgmma-only --wg-from=7: GEMV-vs-GEMM bit checks (every TMA configuration,
#      the default dispatch, the prefill split-K checks on the narrow prefill shapes) and the
#      timings at M = 2048 and 512 next to cuBLASLt (torch's libcublasLt)            -> lab.log
#   2. the default dispatch alone, TESSERA_CUDA_GEMM_PREFILL_SPLIT=0 / 1 / 0 / 1 (--default-only
#      --no-check)                                                                  -> default.log
#   PHASE=1 (call 1, the first split rule: every grid of at most half the SMs):
#   3. engine bench CKPT -p PP -n 0 -r 3, exact and bf16, old / new / old / new: pp512 on the
#      three models, pp2048 on the 0.5B and 1B (8B pp2048 last, old / new)         -> engine.log
#   4. aggregate decode x64 greedy (-p 0 -n 64 --parallel 64 --greedy), new plugin: the step's
#      split (TESSERA_BENCH_STEP_TIMES=1, TESSERA_CUDA_PROFILE=exec: host build / forward vs GPU
#      execute), the per-node profile (TESSERA_CUDA_PROFILE=1, graphs off, -n 16) and plain -r 2
#      runs, new and old                                                                -> x64.log
#   PHASE=2 (call 2, the shipped rule: the split only where it measured faster): steps 1 and 2,
#   then engine pp512 (0.5B, 1B exact + bf16; 8B exact) and 0.5B pp2048 (exact + bf16), old / new
#   x 3, -r 5 (engine.log); x64 greedy in exact and bf16 mode, new plugin, -r 2 (x64.log).
set -u
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
T0=$(date +%s)
DEADLINE=${DEADLINE:-300}
late() {
  [ $(($(date +%s) - T0)) -gt "$DEADLINE" ] && echo "deadline: skipping $1" && return 0
  return 1
}
tar -xzf .dev/bundle.tar.gz -C .dev || exit 1
[ -d .dev/cu-gemm15/g ] || tar -xJf .dev/cu-gemm15/gemm15.tar.xz -C .dev/cu-gemm15 || exit 1
B=$PWD/.dev/bundle
G=$PWD/.dev/cu-gemm15/g
export LD_LIBRARY_PATH=$B/lib
E=$B/bin/engine
. backends/cuda/lab/lab_common.sh  # find_cublaslt, make_checkpoints
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
find_cublaslt
echo "cublaslt: $TESSERA_CUBLASLT"
waitck() {
  local i=0
  while [ ! -f "/tmp/$1.done" ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
}
if ! late lab; then
  echo "=== lab $(date +%T)"
  timeout 120 "$G/cuda_gemm_lab" --wgmma-only --wg-from=7 > "$OUT/lab.log" 2>&1
  echo "lab rc=$? $(date +%T) checks ok: $(grep -c ' ok$' "$OUT/lab.log")"
  grep -E "FAILED|differ|summary|^device|^wgmma" "$OUT/lab.log" | head -20
  grep -E "check prefill_split" "$OUT/lab.log" | head -40
fi
for x in 0 1 0 1; do
  late "default $x" && break
  echo "=== default dispatch TESSERA_CUDA_GEMM_PREFILL_SPLIT=$x $(date +%T)"
  TESSERA_CUDA_GEMM_PREFILL_SPLIT=$x timeout 45 "$G/cuda_gemm_lab" --wgmma-only --wg-from=99 \
    --default-only --no-check 2>&1 | grep -E "FAILED|summary|^gemm "
done > "$OUT/default.log" 2>&1
echo "default A/B done $(date +%T)"
# ebench SIDE ARGS...: engine bench with SIDE's CUDA plugin, the result rows.
ebench() {
  local side=$1
  shift
  TESSERA_BACKEND_PATH=$G/$side timeout 120 "$E" bench --backend cuda "$@" 2>&1 |
    grep -E "^\| (pp|tg)[0-9]|rror" | sed "s/^/    $side /"
}
PHASE=${PHASE:-1}
if [ "$PHASE" = 2 ]; then
  {
    for job in "qwen2.5-0.5b 512 exact" "qwen2.5-0.5b 512 bf16" "llama-3.2-1b 512 exact" \
      "llama-3.2-1b 512 bf16" "qwen2.5-0.5b 2048 exact" "qwen2.5-0.5b 2048 bf16" \
      "llama-3.1-8b 512 exact"; do
      set -- $job
      waitck $1
      late "engine $job" && break
      echo "--- $1 pp$2 $3 $(date +%T)"
      for side in old new old new old new; do
        ebench $side "/tmp/$1" -p "$2" -n 0 -r 5 --backend-opt "cuda.matmul_precision=$3"
      done
    done
  } 2>&1 | tee "$OUT/engine.log"
  {
    for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
      for prec in exact bf16; do
        late "x64 $s $prec" && break 2
        echo "--- $s x64 greedy $prec $(date +%T)"
        ebench new "/tmp/$s" -p 0 -n 64 --parallel 64 --greedy -r 2 \
          --backend-opt "cuda.matmul_precision=$prec"
      done
    done
  } 2>&1 | tee "$OUT/x64.log"
  echo "done $(($(date +%s) - T0)) s"
  exit 0
fi
{
  for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
    waitck $s
    pps="512 2048"
    [ $s = llama-3.1-8b ] && pps=512
    for pp in $pps; do
      for prec in exact bf16; do
        late "engine $s pp$pp $prec" && break 3
        echo "--- $s pp$pp $prec $(date +%T)"
        for side in old new old new; do
          ebench $side "/tmp/$s" -p "$pp" -n 0 -r 3 --backend-opt "cuda.matmul_precision=$prec"
        done
      done
    done
  done
} 2>&1 | tee "$OUT/engine.log"
{
  for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
    waitck $s
    late "x64 $s" && break
    echo "=== $s x64 greedy: step split (PROFILE=exec, graphs on) $(date +%T)"
    TESSERA_BACKEND_PATH=$G/new TESSERA_BENCH_STEP_TIMES=1 TESSERA_CUDA_PROFILE=exec timeout 90 \
      "$E" bench --backend cuda "/tmp/$s" -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1 |
      grep -E "^\| tg|rror|bench steps|cuda profile"
    echo "=== $s x64 greedy: per node (PROFILE=1, graphs off, -n 16) $(date +%T)"
    TESSERA_BACKEND_PATH=$G/new TESSERA_CUDA_PROFILE=1 TESSERA_CUDA_GRAPHS=0 timeout 90 \
      "$E" bench --backend cuda "/tmp/$s" -p 0 -n 16 --parallel 64 --greedy -r 1 2>&1 |
      grep -E "^\| tg|rror|cuda profile"
    echo "=== $s x64 greedy plain -r 2 (new old) $(date +%T)"
    for side in new old; do
      ebench $side "/tmp/$s" -p 0 -n 64 --parallel 64 --greedy -r 2
    done
  done
} 2>&1 | tee "$OUT/x64.log" | grep -E "===|\| tg|rror|bench steps|execute of"
{
  for prec in bf16 exact; do
    late "engine 8B pp2048 $prec" && break
    echo "--- llama-3.1-8b pp2048 $prec $(date +%T)"
    for side in old new; do
      ebench $side /tmp/llama-3.1-8b -p 2048 -n 0 -r 3 --backend-opt "cuda.matmul_precision=$prec"
    done
  done
} 2>&1 | tee -a "$OUT/engine.log"
echo "done $(($(date +%s) - T0)) s"
