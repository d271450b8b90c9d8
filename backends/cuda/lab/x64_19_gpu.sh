#!/bin/bash
# cu-x64-19's GPU call (nineteenth session), from the repo root, carrying .dev/bundle19.tar.xz
# (HEAD's relocatable bundle: engine, plugins, suites, cuda_gemm_lab) and this script.
# 1. Where a 0.5B / 1B greedy x64 step goes on HEAD: TESSERA_CUDA_PROFILE=exec (graphs on: GPU
#    time an execute vs the host's rows) with TESSERA_BENCH_STEP_TIMES=1 (the engine's step split),
#    the per-node profile (PROFILE=1, graphs off) and the fusion refusals (FUSE_DEBUG=1, 2 steps).
# 2. Candidate: the default-off decode-batch fusions TESSERA_CUDA_FUSE_ADD_SMALLM=1 (residual ADD in
#    the o / down GEMM's last write) and +TESSERA_CUDA_FUSE_SWIGLU_SMALLM=1, re-measured on today's
#    tree: bits (cuda_gemm_lab --addfuse, CUDA suites and greedy md5 with the knobs on), then
#    tg64x64 greedy (the lead's measure) interleaved base / add / base / add (+ add+swiglu once), 8B once, batch-1 0.5B.
# Then the CUDA suites with both knobs on, if time is left. Steps stop starting past $DEADLINE s;
# logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
tar xJf .dev/bundle19.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; E=$B/bin/engine
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 200 ]; do sleep 1; i=$((i + 1)); done; }
ADD="TESSERA_CUDA_FUSE_ADD_SMALLM=1"; SWI="TESSERA_CUDA_FUSE_SWIGLU_SMALLM=1"
# Bits first (the lab needs no checkpoint).
echo "=== lab --addfuse $(t)"; timeout 60 $B/bin/cuda_gemm_lab --addfuse > $OUT/lab.log 2>&1; echo "rc=$?"
grep -E "^members|failures|FAIL" $OUT/lab.log | head -5
# 1. Where the step goes (HEAD).
for s in qwen2.5-0.5b llama-3.2-1b; do
  wait_ck $s; echo "=== $s exec profile $(t)"
  TESSERA_CUDA_PROFILE=exec TESSERA_BENCH_STEP_TIMES=1 timeout 60 $E bench --backend cuda /tmp/$s -p 0 -n 64 \
    --parallel 64 --greedy -r 1 > /tmp/pe_$s.log 2>&1
  { echo "##### $s exec"; cat /tmp/pe_$s.log; } >> $OUT/prof.log
  grep -E "cuda profile|bench steps|execute of|\| tg" /tmp/pe_$s.log | head -20
  echo "=== $s node profile $(t)"
  TESSERA_CUDA_PROFILE=1 TESSERA_CUDA_GRAPHS=0 timeout 60 $E bench --backend cuda /tmp/$s -p 0 -n 16 \
    --parallel 64 --greedy -r 1 > /tmp/pn_$s.log 2>&1
  { echo "##### $s nodes"; cat /tmp/pn_$s.log; } >> $OUT/prof.log
  grep -E "cuda profile" /tmp/pn_$s.log | head -22
done
TESSERA_CUDA_FUSE_DEBUG=1 timeout 30 $E bench --backend cuda /tmp/qwen2.5-0.5b -p 0 -n 2 --parallel 64 --greedy -r 1 \
  2>&1 | sort | uniq -c | sort -rn | head -40 > $OUT/fusedebug.log
head -25 $OUT/fusedebug.log
# Greedy md5, knobs off vs on (a 36-token prompt: its prefill runs the M = 9 .. 64 paths).
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
for s in qwen2.5-0.5b llama-3.2-1b; do for v in base add; do
  [ $v = add ] && ev="$ADD $SWI" || ev=""
  env $ev timeout 60 $E --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 2>/dev/null > /tmp/md_${s}_$v.txt
  echo "  $s $v md5 $(md5sum < /tmp/md_${s}_$v.txt | cut -c1-12) bytes $(wc -c < /tmp/md_${s}_$v.txt)"
done; done
# 2. A/B interleaved.
x64() { local s=$1 v=$2 ev=""; case $v in add) ev="$ADD";; addswi) ev="$ADD $SWI";; esac
  left || return 0
  env $ev TESSERA_BENCH_STEP_TIMES=1 timeout 60 $E bench --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1 \
    > /tmp/ab.log 2>&1
  { echo "##### $s $v"; cat /tmp/ab.log; } >> $OUT/ab.log
  grep -E "\| tg|rror" /tmp/ab.log | sed "s/^/  $s $v /"; }
echo "=== A/B tg64x64 greedy $(t)"
for r in 1 2; do for s in qwen2.5-0.5b llama-3.2-1b; do
  for v in base add; do x64 $s $v; done; [ $r = 1 ] && x64 $s addswi; done; done
left && wait_ck llama-3.1-8b
for v in base add; do x64 llama-3.1-8b $v; done
for v in base add; do left && { env $([ $v = add ] && echo $ADD) timeout 60 $E bench --backend cuda /tmp/qwen2.5-0.5b \
  -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg" | sed "s/^/  0.5B tg128 $v /"; }; done
if [ $(( $(date +%s) - T0 )) -lt $((DEADLINE + 30)) ]; then
echo "=== CUDA suites with ADD+SWIGLU small-M on $(t)"
  export TESSERA_CUDA_FUSE_ADD_SMALLM=1 TESSERA_CUDA_FUSE_SWIGLU_SMALLM=1
  cuda_suites; unset TESSERA_CUDA_FUSE_ADD_SMALLM TESSERA_CUDA_FUSE_SWIGLU_SMALLM
fi
echo "total $(t)"
