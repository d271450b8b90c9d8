#!/bin/bash
# cu24-x64's GPU call (twenty-fourth session, H200), from the repo root, carrying
# .dev/bundle24.tar.xz (HEAD f693230's bundle = "old") and .dev/cu24-x64/gpu.tar (this script, the
# new CUDA plugin and cuda_gemm_lab, stripped, xz). The new plugin's knobs (k_gemm_tma.cu):
#   TESSERA_CUDA_GEMM_SPLIT_WIDE (SW): the decode batch's tma128x64pk runs as the 256-row split-K
#     tile where that splits into chunks of >= 2 on >= as many CTAs (8B q / o / down, 1B down);
#     0 = before, 1 plain, 2 pipelined; default 1 where DRAM >= 4 TB/s.
#   TESSERA_CUDA_GEMM_TMA_EVICT (EV): a decode batch's TMA weight loads L2 evict-first; 0 = before.
# 1. Lab bits + times: --splitk (SmallMChecks: default dispatch vs the GEMV rows), --smallm-quick
#    on the 8B q_o / k_v / down and 1B down at M = 64 per knob setting, --addfuse (the fused
#    residual in the combine, M = 9 / 16 / 33 / 64) and --group 8B.gateup (the wide group with EV).
# 2. Greedy md5 old / new on the three models; tg64x64 greedy 8B old new ev0 sw0 new old; the
#    CUDA suites on the new plugin; 1B / 0.5B x64 old new new old; 8B tg128 old new; the per-op
#    profile (TESSERA_CUDA_PROFILE=1, graphs off) of an 8B x64 run with SW=0 EV=0 (= HEAD's
#    kernels) and with the defaults (lead (a): the o vs q inside the step).
# Steps stop starting past $DEADLINE s; logs in $OUT (5 files).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b qwen2.5-0.5b llama-3.2-1b
G=${G:-/tmp/gpu}
rm -rf /tmp/bundle && tar xJf .dev/bundle24.tar.xz -C /tmp
O=/tmp/bundle; B=/tmp/new; rm -rf $B && cp -r $O $B
xz -dc $G/libtessera_backend_cuda.so.xz > $B/lib/tessera/backends/libtessera_backend_cuda.so
xz -dc $G/cuda_gemm_lab.xz > $B/bin/cuda_gemm_lab && chmod +x $B/bin/cuda_gemm_lab
P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so | cut -c1-12
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
L=$B/bin/cuda_gemm_lab
LAB=$OUT/lab.log
lab() {  # lab TAG ENV... -- ARGS: one lab run appended to lab.log; times + summary to the console
  local tag=$1; shift; local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
  echo "##### $tag: ${envs[*]} $*" >> $LAB
  env "${envs[@]}" timeout 60 $L "$@" > /tmp/lab_run.log 2>&1; local rc=$?
  cat /tmp/lab_run.log >> $LAB
  echo "  [$tag] rc=$rc $(grep -c '(BITS)\|DIFF' /tmp/lab_run.log) bit-diff lines; $(grep summary /tmp/lab_run.log)"
}
{
echo "=== lab $(t)"
lab splitk X_NONE=1 -- --splitk
grep -E "^prefill_split|FAIL" /tmp/lab_run.log | head -5
for v in "0 0" "1 0" "0 1" "1 1" "2 1"; do
  set -- $v
  lab "smallm sw=$1 ev=$2" TESSERA_CUDA_GEMM_SPLIT_WIDE=$1 TESSERA_CUDA_GEMM_TMA_EVICT=$2 \
    TESSERA_LAB_SHAPES=8B.q_o,8B.k_v,8B.down,1B.down TESSERA_LAB_TERMS=3 TESSERA_LAB_M=64 -- --smallm-quick
  grep -E "^smallm" /tmp/lab_run.log | sed -E 's/ tma128x128=[^ ]*| tma128x64px=[^ ]*| tma128x64pq=[^ ]*//g'
done
lab "smallm M16 default" TESSERA_LAB_SHAPES=8B.q_o,8B.down TESSERA_LAB_TERMS=3 TESSERA_LAB_M=16 -- --smallm-quick
for v in "0 0" "1 1"; do
  set -- $v
  lab "addfuse sw=$1 ev=$2" TESSERA_CUDA_GEMM_SPLIT_WIDE=$1 TESSERA_CUDA_GEMM_TMA_EVICT=$2 \
    TESSERA_LAB_SHAPES=8B.o,8B.down,1B.down -- --addfuse
  grep -E "_M64_terms3|_M33_terms3" /tmp/lab_run.log | cut -c1-160
done
for e in 0 1; do
  lab "group ev=$e" TESSERA_CUDA_GEMM_TMA_EVICT=$e TESSERA_LAB_SHAPES=8B.gateup TESSERA_LAB_TERMS=3 -- --group
  grep -E "^group 8B" /tmp/lab_run.log | head -3 | cut -c1-220
done
} 2>&1 | tee $OUT/console.log
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
tg() {  # tg SIDE CKPT ENV...: batch-1 tg128 -r 2
  local side=$1 s=$2 d=$B; shift 2; [ $side = old ] && d=$O
  echo "  $s $side $(env X_NONE=1 "$@" LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda /tmp/$s \
    -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg' | awk -F'|' '{print $3}')"; }
prof() {  # prof TAG ENV...: per-op profile of an 8B x64 run (graphs off), the GEMM / attention rows
  # (In the call this function lacked the shift below and ran `env TAG ...`: no profile came back.)
  local tag=$1; shift
  left || return 0
  env "$@" TESSERA_CUDA_PROFILE=1 LD_LIBRARY_PATH=$B/lib timeout 60 $B/bin/engine bench --backend cuda \
    /tmp/llama-3.1-8b -p 0 -n 16 --parallel 64 --greedy -r 1 > /tmp/prof.txt 2>&1
  { echo "##### prof [$tag] $*"; grep -E "cuda profile" /tmp/prof.txt | head -40; } >> $OUT/prof.log
  echo "  prof [$tag]"; grep -E "cuda profile" /tmp/prof.txt | grep -E "MATMUL|ATTENTION|NORM" | head -12 | cut -c1-150; }
{
wait_ck llama-3.1-8b
echo "=== greedy md5 old / new $(t)"
md llama-3.1-8b old X_NONE=1; md llama-3.1-8b new X_NONE=1
for s in qwen2.5-0.5b llama-3.2-1b; do wait_ck $s; md $s old X_NONE=1; md $s new X_NONE=1; done
echo "=== 8B tg64x64 greedy $(t)"
x64 old llama-3.1-8b ab X_NONE=1
x64 new llama-3.1-8b ab X_NONE=1
x64 new llama-3.1-8b ev0 TESSERA_CUDA_GEMM_TMA_EVICT=0
x64 new llama-3.1-8b sw0 TESSERA_CUDA_GEMM_SPLIT_WIDE=0
x64 new llama-3.1-8b ab X_NONE=1
x64 old llama-3.1-8b ab X_NONE=1
echo "=== CUDA suites, new plugin (defaults) $(t)"
cuda_suites
echo "=== 1B / 0.5B x64 controls $(t)"
for s in llama-3.2-1b qwen2.5-0.5b; do
  left && { x64 old $s ctl X_NONE=1; x64 new $s ctl X_NONE=1; x64 new $s ctl X_NONE=1; x64 old $s ctl X_NONE=1; }
done
echo "=== 8B tg128 (batch 1) $(t)"
left && { tg old llama-3.1-8b; tg new llama-3.1-8b; }
echo "=== per-op profile, 8B x64 $(t)"
prof head TESSERA_CUDA_GEMM_SPLIT_WIDE=0 TESSERA_CUDA_GEMM_TMA_EVICT=0
prof new X_NONE=1
left && { x64 new llama-3.1-8b sw2 TESSERA_CUDA_GEMM_SPLIT_WIDE=2; x64 new llama-3.1-8b ab X_NONE=1; }
echo "total $(t)"
} 2>&1 | tee -a $OUT/console.log
