#!/bin/bash
# cu24-x64's second GPU call (twenty-fourth session, H200), from the repo root, carrying
# .dev/bundle24.tar.xz (HEAD f693230's bundle = "old") and .dev/cu24-x64/gpu2.tar (this script, the
# new CUDA plugin and cuda_gemm_lab, stripped, xz). The new plugin: TESSERA_CUDA_GEMM_TMA_EVICT
# (k_gemm_tma.cu WeightEvictFirst: a decode batch's TMA weight loads L2 evict-first where the
# launch's weights fill at most half the L2; 0 = before, 2 = every decode-batch launch, as call 1
# measured it; default 1 where DRAM >= 4 TB/s). The split-wide tile of call 1 is not in it.
# 1. tg64x64 greedy old new new old on the 0.5B, 1B, 8B (+ the 0.5B with =2, the 8B with =3:
#    evict-first on every decode-batch launch with the weight maps' L2 promotion off);
#    greedy md5 of the new plugin; --splitk lab bits.
# 2. The per-op profile (TESSERA_CUDA_PROFILE=1, graphs off) of an 8B x64 run with HEAD's kernels
#    (EVICT=0): lead (a), the o inside the step. The CUDA suites if time is left.
# Checkpoints a warm machine already holds (/tmp/SHAPE.done) are reused. Logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-75}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
need=()
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do [ -f /tmp/$s.done ] || need+=($s); done
[ ${#need[@]} -gt 0 ] && make_checkpoints "${need[@]}"
echo "checkpoints to make: ${need[*]:-none}"
G=${G:-/tmp/gpu2}
rm -rf /tmp/bundle && tar xJf .dev/bundle24.tar.xz -C /tmp
O=/tmp/bundle; B=/tmp/new; rm -rf $B && cp -r $O $B
xz -dc $G/libtessera_backend_cuda.so.xz > $B/lib/tessera/backends/libtessera_backend_cuda.so
xz -dc $G/cuda_gemm_lab.xz > $B/bin/cuda_gemm_lab && chmod +x $B/bin/cuda_gemm_lab
P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so | cut -c1-12
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
md() {  # md CKPT SIDE ENV...
  local s=$1 side=$2 d=$B; shift 2; [ $side = old ] && d=$O
  env "$@" LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "$PR" --raw -n 48 \
    --temperature 0 2>/dev/null > /tmp/md_${s}_$side.txt
  echo "  $s $side $* md5 $(md5sum < /tmp/md_${s}_$side.txt | cut -c1-12) bytes $(wc -c < /tmp/md_${s}_$side.txt)"; }
x64() {  # x64 SIDE CKPT TAG ENV...: tg64x64 greedy -r 1, the forward a step
  local side=$1 s=$2 tag=$3 d=$B; shift 3; [ $side = old ] && d=$O
  local o; o=$(env "$@" TESSERA_BENCH_STEP_TIMES=1 LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench \
    --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1)
  { echo "##### $s $side [$tag] $*"; echo "$o"; } >> $OUT/engine.log
  echo "  $s $side [$tag] $(echo "$o" | grep -E '\| tg' | awk -F'|' '{print $3}' | awk '{print $1}') t/s," \
    "$(echo "$o" | grep -E 'bench steps: 64 x' | sed 's/.*forward //' | tr '\n' ' ') $(echo "$o" | grep -ciE 'error|fail')"; }
prof() {  # prof TAG ENV...: per-op profile of an 8B x64 run (graphs off)
  local tag=$1; shift
  left || return 0
  env "$@" TESSERA_CUDA_PROFILE=1 LD_LIBRARY_PATH=$B/lib timeout 60 $B/bin/engine bench --backend cuda \
    /tmp/llama-3.1-8b -p 0 -n 16 --parallel 64 --greedy -r 1 > /tmp/prof.txt 2>&1
  { echo "##### prof [$tag] $*"; grep -E "cuda profile" /tmp/prof.txt | head -60; } >> $OUT/prof.log
  echo "  prof [$tag]"; grep -E "cuda profile" /tmp/prof.txt | head -16 | cut -c1-150; }
{
echo "=== lab --splitk (bits) $(t)"
timeout 30 $B/bin/cuda_gemm_lab --splitk > $OUT/lab.log 2>&1; echo "  rc=$? $(grep summary $OUT/lab.log)"
for s in qwen2.5-0.5b llama-3.2-1b; do
  wait_ck $s; echo "=== $s tg64x64 greedy $(t)"
  x64 old $s ab X_NONE=1; x64 new $s ab X_NONE=1
  [ $s = qwen2.5-0.5b ] && x64 new $s ev2 TESSERA_CUDA_GEMM_TMA_EVICT=2
  x64 new $s ab X_NONE=1; x64 old $s ab X_NONE=1
done
wait_ck llama-3.1-8b; echo "=== 8B tg64x64 greedy $(t)"
x64 old llama-3.1-8b ab X_NONE=1; x64 new llama-3.1-8b ab X_NONE=1
x64 new llama-3.1-8b ev3 TESSERA_CUDA_GEMM_TMA_EVICT=3
x64 new llama-3.1-8b ab X_NONE=1; x64 old llama-3.1-8b ab X_NONE=1
echo "=== greedy md5, new $(t)"
for s in llama-3.1-8b qwen2.5-0.5b llama-3.2-1b; do md $s new X_NONE=1; done
echo "=== per-op profile, 8B x64, HEAD's kernels $(t)"
prof head TESSERA_CUDA_GEMM_TMA_EVICT=0
left && { echo "=== CUDA suites, new plugin $(t)"; cuda_suites; }
echo "total $(t)"
} 2>&1 | tee $OUT/console.log
