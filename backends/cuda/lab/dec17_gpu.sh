#!/bin/bash
# cu-dec17's GPU call (seventeenth session), from the repo root, carrying
# .dev/cu-dec17/bundle.tar.xz (engine + tests of cu-dec16b's bundle: the same engine / core / test
# sources as HEAD c4c4067; this tree's CUDA plugin and cuda_gemv_lab; HEAD's CUDA plugin as
# bundle/old/; the script and lab_common.sh inside). The change: the cross-task register pipeline
# in the persistent GEMV (kGemvPipeNext, TESSERA_CUDA_GEMV_NEXT: 0 off, 1 the 8B norm + gate/up,
# 2 + the first task's words before the RMS prologue, 4 the 8B norm + q/k/v and o in whole chunks
# on a persistent 16-warp grid).
# Steps: lab bit checks (GEMV + SWIGLU, memcmp vs the GEMM's rows / the unfused launches) with
# NEXT=7 and the default, lab timing of the engine's launches per NEXT value (two rounds), CUDA
# suites + graph replay on the new plugin, greedy md5 old / new (1B, 8B), engine tg128 per side
# interleaved (8B: old, default, NEXT=3, 5, 7; 1B: old, default).
# Calls: 1 (19:53 UTC, first build: the preload registers spilled), 2 (20:06 UTC, spill-free build).
# Measured, not kept: the change is results/dec17/next_not_kept.diff (`git apply` on c4c4067; the
# kept tree has only the lab's --dec17 timer). Logs: results/dec17/call{1,2}/.
# Re-run: apply the diff, build tessera_backend_cuda + cuda_gemv_lab, make the bundle as
# .dev/cu-dec17/bundle (cu-dec16b's bundle with these two, HEAD's CUDA plugin as bundle/old/, this
# script and lab_common.sh inside), tar + xz it to .dev/cu-dec17/bundle.tar.xz, carry it, run
# `tar xJf .dev/cu-dec17/bundle.tar.xz -C .dev/cu-dec17 && DEADLINE=280 OUT=$OUT bash
# .dev/cu-dec17/bundle/dec17_gpu.sh` (~220 s on an H100).
# Steps stop starting past $DEADLINE s. Logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
D=.dev/cu-dec17
[ -d $D/bundle/bin ] || tar xJf $D/bundle.tar.xz -C $D
B=$PWD/$D/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
. $B/lab_common.sh
make_checkpoints llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf /tmp/oldp && cp -r $B /tmp/oldp && cp $B/old/libtessera_backend_cuda.so /tmp/oldp/lib/tessera/backends/
SIDES8=${SIDES8:-"old d 3 5 7"}; CHECKS=${CHECKS:-"7 d"}; LABR=${LABR:-"1"}
# side: old (HEAD's plugin), d (this plugin, default knobs), N (this plugin, TESSERA_CUDA_GEMV_NEXT=N)
side_dir() { [ $1 = old ] && echo /tmp/oldp || echo $B; }
side_env() { case $1 in old|d) echo "X_NONE=1" ;; *) echo "TESSERA_CUDA_GEMV_NEXT=$1" ;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }

for nx in $CHECKS; do
  echo "=== cuda_gemv_lab checks (GEMV + SWIGLU only), NEXT=$nx $(date +%T)"
  env $(side_env $nx) GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 120 $B/bin/cuda_gemv_lab --quick > $OUT/lab_checks_$nx.log 2>&1
  echo "rc=$? bits_vs_gemm shapes $(grep -c '^checked' $OUT/lab_checks_$nx.log); same-bits lines $(grep -c 'same bits' $OUT/lab_checks_$nx.log)"
  grep -E "FAILED|DIFFERENT|^checks|_big|K4096_N14336|K1064_N9000|N6144" $OUT/lab_checks_$nx.log | head -12
  grep -E "^swiglu_epi 8B" $OUT/lab_checks_$nx.log
  el
done
labt() { for nx in 0 1 3 5 7; do
    echo "=== lab --dec17 NEXT=$nx (round $r) $(date +%T)"
    GEMV_LAB_TAG=NEXT=$nx TESSERA_CUDA_GEMV_NEXT=$nx timeout 60 $B/bin/cuda_gemv_lab --dec17 > /tmp/lab17.log 2>&1; echo "rc=$?"
    cat /tmp/lab17.log >> $OUT/lab_dec17.log
    grep -E "^dec17" /tmp/lab17.log
  done; el; }
for r in $LABR; do labt; done
echo "=== CUDA suites (new plugin, default)"; cuda_suites
for nx in d 7; do
  echo "  graph replay NEXT=$nx: $(env $(side_env $nx) TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
done
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
for s in llama-3.2-1b llama-3.1-8b; do
  waitck $s
  for side in old d 7; do d=$(side_dir $side)
    [ $s = llama-3.2-1b ] && [ $side = 7 ] && continue
    env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
  done
done
el
for r in 1 2 3 4; do
  for s in llama-3.1-8b llama-3.2-1b; do
    left || break
    [ $s = llama-3.2-1b ] && [ $r -gt 2 ] && continue
    if [ $s = llama-3.1-8b ]; then S=$SIDES8; else S="old d"; fi
    # rotate the order each round
    set -- $S; n=$#; S=""; for i in $(seq 0 $((n - 1))); do j=$(( (i + r - 1) % n + 1 )); S="$S ${!j}"; done
    echo "=== $s tg128 round $r ($S)"
    for side in $S; do ab $side /tmp/$s -p 16 -n 128 -r 3; done
    el
  done
done
left && labt
echo "total $(( $(date +%s) - T0 )) s"
