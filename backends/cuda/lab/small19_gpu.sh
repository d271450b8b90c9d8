#!/bin/bash
# cu-small19's GPU call (nineteenth session), from the repo root, carrying
# .dev/cu-small19/bundle.tar.xz: .dev/bundle19.tar.xz (HEAD df38488's engine, CPU plugin, tests)
# less its Vulkan parts, cuda_gemm_lab and cuda_backend_test, with this tree's CUDA plugin and
# cuda_gemv_lab, HEAD's CUDA plugin as bundle/old/, this script as bundle/small19_gpu.sh.
# (1) Where a batch-1 decode step of the small models goes under graphs + PDL: the per-node
#     profile (graphs off), then TESSERA_CUDA_LAB_SKIP (lab knob, wrong outputs) leaving one launch
#     kind out of the captured decode graph per run, `engine bench -p 16 -n 128 -r 1` with
#     TESSERA_CUDA_PROFILE=exec (GPU time of an execute): the drop is that launch's critical-path
#     cost. Skip runs use TESSERA_CUDA_GEMV_PRELOAD=0 (HEAD's kernels).
# (2) The register preload of the 0.5B's plain o / down launches before the PDL wait
#     (kGemvPipePre, TESSERA_CUDA_GEMV_PRELOAD, default 1): lab bit checks (default and =2, every
#     plain whole-chunk launch), lab --dec17 PRELOAD 0 / 1, CUDA suites + graph replay, greedy md5
#     old / new (0.5B, 1B, 8B), tg128 old / new / p0 interleaved (-r 2, order alternating).
#     Measured, not kept (0.5B -4%): the plugin it ran had results/small19/preload_not_kept.diff
#     applied; without it TESSERA_CUDA_GEMV_PRELOAD does nothing (new = p0 = HEAD's kernels).
# Run: `tar xJf .dev/cu-small19/bundle.tar.xz -C /tmp && OUT=$OUT bash /tmp/bundle/small19_gpu.sh`.
# Logs in $OUT (results/small19/), at most 8 files.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-140}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
B=/tmp/bundle; [ -d $B/bin ] || tar xJf .dev/cu-small19/bundle.tar.xz -C /tmp
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf /tmp/oldp && cp -r $B /tmp/oldp && cp $B/old/libtessera_backend_cuda.so /tmp/oldp/lib/tessera/backends/
export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
md5sum /tmp/oldp/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so | cut -c1-12
side_dir() { [ $1 = old ] && echo /tmp/oldp || echo $B; }
side_env() { case $1 in p0) echo TESSERA_CUDA_GEMV_PRELOAD=0 ;; *) echo X_NONE=1 ;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }

echo "=== lab GEMV + SWIGLU checks (memcmp), PRELOAD default / 2 $(date +%T)"
for m in 1 2; do
  TESSERA_CUDA_GEMV_PRELOAD=$m GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 90 \
    $B/bin/cuda_gemv_lab --quick > /tmp/lab_checks.log 2>&1
  echo "PRELOAD=$m rc=$? shapes $(grep -c '^checked' /tmp/lab_checks.log); same-bits lines $(grep -c 'same bits' /tmp/lab_checks.log)"
  grep -E "FAILED|DIFFERENT|^checks|N896_K4864" /tmp/lab_checks.log | head -12
  { echo "##### PRELOAD=$m"; cat /tmp/lab_checks.log; } >> $OUT/lab_checks.log
done
el
for r in 1 2; do for m in 0 1; do
  echo "=== lab --dec17 PRELOAD=$m (round $r) $(date +%T)"
  GEMV_LAB_TAG=PRELOAD=$m TESSERA_CUDA_GEMV_PRELOAD=$m timeout 60 $B/bin/cuda_gemv_lab --dec17 > /tmp/lab17.log 2>&1; echo "rc=$?"
  cat /tmp/lab17.log >> $OUT/lab_dec17.log; grep -E "^dec17 (05B|1B-o|1B-down|8B-o|8B-down)" /tmp/lab17.log
done; done
el
echo "=== CUDA suites (new plugin, default)"; cuda_suites
echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
el

md5s() {  # md5s SHAPE...: greedy 48 tokens per side
  local s side d
  echo "=== greedy text per side (md5 of 48 generated tokens)"
  for s in "$@"; do
    waitck $s
    for side in old new p0; do d=$(side_dir $side)
      [ $side = p0 ] && [ $s != qwen2.5-0.5b ] && continue
      env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
      echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
    done
  done
  el
}
rounds() {  # rounds N SHAPE...: tg128 old / new (/ p0 on 0.5B), order alternating
  local n=$1 r s S side; shift
  for r in $(seq 1 $n); do
    for s in "$@"; do
      waitck $s
      if [ $((r % 2)) = 1 ]; then S="old new"; else S="new old"; fi
      [ $s = qwen2.5-0.5b ] && { [ $((r % 2)) = 1 ] && S="old new p0" || S="p0 new old"; }
      echo "=== $s tg128 round $r ($S)"
      for side in $S; do ab $side /tmp/$s -p 16 -n 128 -r 2; done
      el
    done
  done
}
md5s qwen2.5-0.5b llama-3.2-1b
rounds 3 qwen2.5-0.5b llama-3.2-1b

# Part 1: profiles and the skip runs (new plugin, PRELOAD=0: HEAD's kernels).
SK05=("ROPE" "KV_WRITE" "PAGED_ATTENTION" "MATMUL x3" "N=896 K=896" "MATMUL x2" "=SWIGLU" "K=4864" "N=151936" "GET_ROWS")
SK1=("ROPE" "KV_WRITE" "PAGED_ATTENTION" "MATMUL x3" "N=2048 K=2048" "MATMUL x2" "=SWIGLU" "K=8192")
skipbench() {  # skipbench CKPT LABEL ENV...: tg128 and the exec profile's GPU time a step
  local ck=$1 lab=$2; shift 2
  local o; o=$(env TESSERA_CUDA_GEMV_PRELOAD=0 TESSERA_CUDA_PROFILE=exec "$@" timeout 60 $B/bin/engine bench \
    --backend cuda /tmp/$ck -p 16 -n 128 -r 1 2>&1)
  echo "##### $ck skip=[$lab] $*" >> $OUT/skip.log; echo "$o" >> $OUT/skip.log
  printf "  %-14s %-18s tg %s  gpu: %s\n" "$ck" "[$lab]" \
    "$(echo "$o" | grep -E '\| tg128' | awk -F'|' '{print $3}' | awk '{print $1}')" \
    "$(echo "$o" | grep -E 'execute of [0-9]+ nodes \(gpu\)' | awk '{print $6"x "$8"us n"$12}' | tr '\n' ' ')"
}
for s in qwen2.5-0.5b llama-3.2-1b; do
  waitck $s
  echo "=== $s per-node profile (graphs off), exec profile $(date +%T)"
  for pm in 1 exec; do
    { echo "##### $s PROFILE=$pm (new plugin, PRELOAD=0)"
      TESSERA_CUDA_GEMV_PRELOAD=0 TESSERA_CUDA_PROFILE=$pm timeout 60 $B/bin/engine bench --backend cuda /tmp/$s -p 16 -n 64 -r 1 2>&1 |
        grep -E "cuda profile|\| tg"; } >> $OUT/prof.log
  done
  grep -A14 "$s PROFILE=1" $OUT/prof.log | grep "decode" | head -12
  el
  echo "=== $s skip runs (TESSERA_CUDA_LAB_SKIP; -r 1, exec profile) $(date +%T)"
  if [ $s = qwen2.5-0.5b ]; then SK=("${SK05[@]}"); else SK=("${SK1[@]}"); fi
  skipbench $s none X_NONE=1
  for k in "${SK[@]}"; do left || break; skipbench $s "$k" "TESSERA_CUDA_LAB_SKIP=$k"; done
  skipbench $s none X_NONE=1
  el
done

md5s llama-3.1-8b
rounds 2 llama-3.1-8b

# One 0.5B decode step's kernels under ncu (graphs off, serialized), if there is time.
NCU=$(which ncu 2>/dev/null || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$NCU" ] && [ $(( $(date +%s) - T0 )) -lt $(( DEADLINE - 25 )) ]; then
  echo "=== ncu 0.5B -p 4 -n 2 (graphs off) $(date +%T)"
  TESSERA_CUDA_GRAPHS=0 timeout 60 $NCU --clock-control none --csv --metrics gpu__time_duration.sum \
    $B/bin/engine bench --backend cuda /tmp/qwen2.5-0.5b -p 4 -n 2 -r 1 > $OUT/ncu_05b.csv 2>/tmp/ncu.err
  echo "ncu rc=$? lines $(wc -l < $OUT/ncu_05b.csv)"; tail -2 /tmp/ncu.err
  el
fi
echo "total $(( $(date +%s) - T0 )) s"
