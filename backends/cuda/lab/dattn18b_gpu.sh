#!/bin/bash
# cu-attn18b's GPU call (eighteenth session, second round), from the repo root, carrying
# .dev/cu-attn18b/bundle.tar.xz: HEAD 7b7add3's bundle (.dev/bundle18: engine, CUDA tests, CPU
# plugin and its CUDA plugin = "old"), this tree's CUDA plugin as bundle/new/, bench_cuda_kernels,
# this script and lab_common.sh.
# Sides (all the same bits): old = HEAD's plugin (its decode tiles = TESSERA_CUDA_ATTN_TC_DEC=1);
# d4 / d5 / d6 = this plugin with TESSERA_CUDA_ATTN_TC_DEC=4 (no f32 staging: K / V units
# through registers, -32 / -16 KB a block at D = 128 / 64), 5 (4 + the cluster partials in the
# K pieces' buffer, -42 / -22 KB), 6 (the partials alone, -10 / -6 KB).
# Steps: lab `--attention-tc 2048` under DEC = 4, 5, 6 (memcmp checks, 1 .. 2048-key sweep,
# decode call times), CUDA suites + graph replay under DEC=5 / 4 / 6, greedy 48-token md5 per
# side (0.5B, 1B, 8B), tg128 (-p 16 -n 128 -r 2) interleaved, order alternating, 3 rounds a model.
# One call (23:10 UTC, H100, logs results/dattn18b/): DEC=4 kept as the default (lab/NOTES.md "K/V
# through registers"); the bundle: .dev/bundle18 less cuda_gemm_lab / cuda_gemv_lab / Vulkan, with
# this tree's stripped plugin in bundle/new/, stripped bench_cuda_kernels in bundle/bin/ (30 MB xz).
# Re-run: `tar xJf .dev/cu-attn18b/bundle.tar.xz -C .dev/cu-attn18b &&
#   OUT=$OUT bash .dev/cu-attn18b/bundle/dattn18b_gpu.sh`.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-250}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
D=.dev/cu-attn18b
[ -d $D/bundle/bin ] || tar xJf $D/bundle.tar.xz -C $D
B=$PWD/$D/bundle; export LD_LIBRARY_PATH=$B/lib
. $B/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf /tmp/newp && cp -r $B /tmp/newp && cp $B/new/libtessera_backend_cuda.so /tmp/newp/lib/tessera/backends/
md5sum $B/lib/tessera/backends/libtessera_backend_cuda.so /tmp/newp/lib/tessera/backends/libtessera_backend_cuda.so
side_dir() { [ $1 = old ] && echo $B || echo /tmp/newp; }
side_env() { case $1 in d*) echo TESSERA_CUDA_ATTN_TC_DEC=${1#d} ;; *) echo X_NONE=1 ;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| (tg|pp)|rror" | sed "s/^/    $side /"; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }
md5s() { local s=$1; waitck $s
  for side in old d4 d5 d6; do d=$(side_dir $side)
    env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
  done; }

for m in 4 5 6; do
  echo "=== lab --attention-tc 2048 DEC=$m (memcmp checks + decode times) $(date +%T)"
  TESSERA_CUDA_ATTN_TC_DEC=$m timeout 120 $B/bin/bench_cuda_kernels --attention-tc 2048 > $OUT/lab_tc$m.log 2>&1; echo "rc=$?"
  grep -E "FAIL|summary|tc_decode_sweep" $OUT/lab_tc$m.log | head -20
  echo "ok checks: $(grep -c ' ok$' $OUT/lab_tc$m.log)"
  grep -E "time attention_decode_paged_tc_split" $OUT/lab_tc$m.log | grep "round=1" | sed 's/time attention_decode_paged_//'
done
el
P=/tmp/newp/lib/tessera/backends
echo "=== CUDA suites (new plugin, DEC=5)"; TESSERA_CUDA_ATTN_TC_DEC=5 cuda_suites
for m in 4 5 6; do
  echo "  graph replay DEC=$m: $(TESSERA_CUDA_ATTN_TC_DEC=$m TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
done
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
md5s qwen2.5-0.5b; md5s llama-3.2-1b
el
for r in 1 2 3; do
  case $r in 1|3) S="old d4 d5 d6" ;; 2) S="d6 d5 d4 old" ;; esac
  for s in llama-3.2-1b qwen2.5-0.5b; do
    echo "=== $s tg128 round $r ($S)"
    for side in $S; do ab $side /tmp/$s -p 16 -n 128 -r 2; done
  done
  el
done
md5s llama-3.1-8b
el
for r in 1 2 3 4; do
  left || break
  case $r in 1|3) S="old d4 d5 d6" ;; 2|4) S="d6 d5 d4 old" ;; esac
  echo "=== llama-3.1-8b tg128 round $r ($S)"
  for side in $S; do ab $side /tmp/llama-3.1-8b -p 16 -n 128 -r 2; done
  el
done
echo "total $(( $(date +%s) - T0 )) s"
