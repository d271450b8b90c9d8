#!/bin/bash
# cu-dec16b's GPU call (sixteenth session, second round), from the repo root, carrying
# .dev/cu-dec16b/bundle.tar.xz (engine + tests of HEAD 7f8c0b1's tree, this tree's CUDA plugin and
# cuda_gemv_lab, HEAD's CUDA plugin as bundle/old/; the script travels inside as
# bundle/dec16b_gpu.sh). The change: GemvDown2 (8B down at M = 1: two row groups a 16-warp block,
# 7 chunks on every warp, one wave; TESSERA_CUDA_GEMV_DOWN2=0 = before).
# Steps: lab bit checks (GEMV + SWIGLU, memcmp vs the GEMM's rows), lab timing of the engine's
# GEMV launches DOWN2=0 / 1 interleaved, CUDA suites + graph replay on the new plugin, greedy md5
# old / new (1B, 8B), engine tg128 old / new interleaved (8B three rounds, 1B four).
# Calls: 1 (18:46 UTC, GemvDown2 as a runtime branch of the shared whole-chunk kernel), 2 (its own
# instantiation, PIPE kGemvPipeTwo: the kept form). Logs: results/dec16b/call{1,2}/.
# Steps stop starting past $DEADLINE s. Logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
D=.dev/cu-dec16b
[ -d $D/bundle/bin ] || tar xf $D/bundle.tar.xz -C $D
B=$PWD/$D/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
. backends/cuda/lab/lab_common.sh 2>/dev/null || . $B/lab_common.sh
make_checkpoints llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf /tmp/oldp && cp -r $B /tmp/oldp && cp $B/old/libtessera_backend_cuda.so /tmp/oldp/lib/tessera/backends/
side_dir() { [ $1 = old ] && echo /tmp/oldp || echo $B; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }

echo "=== cuda_gemv_lab checks (GEMV + SWIGLU only) $(date +%T)"
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 60 $B/bin/cuda_gemv_lab --quick > $OUT/lab_checks.log 2>&1
echo "rc=$? bits_vs_gemm compared: $(grep -c '^checked' $OUT/lab_checks.log) shapes; same-bits lines $(grep -c 'same bits' $OUT/lab_checks.log)"
grep -E "FAILED|^checks|summary|^checked N4096_K14336" $OUT/lab_checks.log | head
el
for r in 1 2; do
  for d2 in 0 1; do
    echo "=== lab engine GEMV launches, TESSERA_CUDA_GEMV_DOWN2=$d2 (round $r) $(date +%T)"
    TESSERA_CUDA_GEMV_DOWN2=$d2 GEMV_LAB_DEC16_GEMV_ONLY=1 timeout 40 $B/bin/cuda_gemv_lab --dec16 > /tmp/lab_d${d2}_$r.log 2>&1; echo "rc=$?"
    cat /tmp/lab_d${d2}_$r.log >> $OUT/lab_dec16b.log
    grep -E "^engine_gemv .* v=0 " /tmp/lab_d${d2}_$r.log
  done
done
el
echo "=== CUDA suites (new plugin)"; cuda_suites
echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
for s in llama-3.2-1b llama-3.1-8b; do
  waitck $s
  for side in old new; do d=$(side_dir $side)
    LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
  done
done
el
for r in 1 2 3 4; do
  for s in llama-3.1-8b llama-3.2-1b; do
    left || break
    [ $s = llama-3.1-8b ] && [ $r = 4 ] && continue
    [ $((r % 2)) = 1 ] && S="old new" || S="new old"
    echo "=== $s tg128 A/B round $r ($S)"
    for side in $S; do ab $side /tmp/$s -p 16 -n 128 -r 3; done
    el
  done
done
echo "total $(( $(date +%s) - T0 )) s"
