#!/bin/bash
# cu-attn18's GPU call (eighteenth session), from the repo root, carrying .dev/cu-attn18/bundle.tar.xz:
# engine + CUDA tests + CPU plugin (cu-dec18's bundle, built from HEAD 0a00b9a), this tree's CUDA
# plugin (HEAD + cu-dec18 + the kOptDecode decode tiles) and bench_cuda_kernels, HEAD 0a00b9a's
# CUDA plugin as bundle/old/ (.dev/old18), this script and lab_common.sh.
# Sides: old = HEAD's plugin; new = this plugin (default, TESSERA_CUDA_ATTN_TC_DEC=1); off = this
# plugin with TESSERA_CUDA_ATTN_TC_DEC=0 (HEAD's cluster-split decode tiles: the clean A of the
# change); kv = DEC=2 (K and V copied at once, +1 f32 staging); pad = DEC=3 (HEAD's tiles with
# that extra shared memory: the diagnostic).
# CALL=1 (22:43 UTC) ran the first version (what is now DEC=2 as the default: 8B -2.3%); CALL=2:
# lab `--attention-tc 2048` under DEC=1 / 2 / 3 (memcmp: decode variants vs the prefill rows,
# the 1 .. 2048-key sweep of 13 / 21, batched decode calls; decode call times 21 / 13
# interleaved), CUDA suites + graph replay, greedy 48-token md5 old / new / off (0.5B, 1B, 8B),
# tg128 off / new / pad (/ kv) interleaved, 1B -p 1024 -n 64 guard.
# Re-run: build tessera_backend_cuda bench_cuda_kernels, make the bundle (notes), then
# `tar xJf .dev/cu-attn18/bundle.tar.xz -C .dev/cu-attn18 && OUT=$OUT bash .dev/cu-attn18/bundle/dattn18_gpu.sh`.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-190}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
D=.dev/cu-attn18
[ -d $D/bundle/bin ] || tar xJf $D/bundle.tar.xz -C $D
B=$PWD/$D/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
. $B/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf /tmp/oldp && cp -r $B /tmp/oldp && cp $B/old/libtessera_backend_cuda.so /tmp/oldp/lib/tessera/backends/
side_dir() { [ $1 = old ] && echo /tmp/oldp || echo $B; }
side_env() { case $1 in off) echo TESSERA_CUDA_ATTN_TC_DEC=0 ;; kv) echo TESSERA_CUDA_ATTN_TC_DEC=2 ;;
  pad) echo TESSERA_CUDA_ATTN_TC_DEC=3 ;; *) echo X_NONE=1 ;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| (tg|pp)|rror" | sed "s/^/    $side /"; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }
md5s() { local s=$1; waitck $s
  for side in old new off; do d=$(side_dir $side)
    env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
  done; }

for m in 1 2 3; do
  echo "=== lab --attention-tc 2048 DEC=$m (memcmp checks + decode times) $(date +%T)"
  TESSERA_CUDA_ATTN_TC_DEC=$m timeout 120 $B/bin/bench_cuda_kernels --attention-tc 2048 > $OUT/lab_tc$m.log 2>&1; echo "rc=$?"
  grep -E "FAIL|summary|tc_decode_sweep" $OUT/lab_tc$m.log | head -20
  echo "ok checks: $(grep -c ' ok$' $OUT/lab_tc$m.log)"
  grep -E "time attention_decode_paged_tc_split" $OUT/lab_tc$m.log | grep "round=1" | sed 's/time attention_decode_paged_//'
done
el
echo "=== CUDA suites (new plugin, default)"; cuda_suites
echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
md5s qwen2.5-0.5b; md5s llama-3.2-1b
el
for r in 1 2 3; do
  for s in qwen2.5-0.5b llama-3.2-1b; do
    case $r in 1) S="off new pad" ;; 2) S="new off" ;; 3) S="pad new off" ;; esac
    echo "=== $s tg128 round $r ($S)"
    for side in $S; do ab $side /tmp/$s -p 16 -n 128 -r 3; done
  done
  el
done
echo "=== llama-3.2-1b -p 1024 -n 64 guard (off new new off)"
for side in off new new off; do ab $side /tmp/llama-3.2-1b -p 1024 -n 64 -r 3; done
el
md5s llama-3.1-8b
el
for r in 1 2 3; do
  left || break
  case $r in 1) S="off new pad" ;; 2) S="new off kv" ;; 3) S="pad new off old" ;; esac
  echo "=== llama-3.1-8b tg128 round $r ($S)"
  for side in $S; do ab $side /tmp/llama-3.1-8b -p 16 -n 128 -r 3; done
  el
done
echo "total $(( $(date +%s) - T0 )) s"
