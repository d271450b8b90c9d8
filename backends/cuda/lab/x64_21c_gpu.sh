#!/bin/bash
# cu21-x64b's GPU call (twenty-first session), from the repo root, carrying .dev/bundle21.tar.xz
# (HEAD b104649's bundle: engine, CPU plugin, the CUDA suites) and .dev/cu21-x64b/gpu.tar (this
# script; old = 98ca895's CUDA plugin, new = the plugin with the split-K combine inside the split
# tile, TESSERA_CUDA_TMA_TILE_COMBINE default on; cuda_gemm_lab of the new tree; all stripped, xz).
# Measured, not kept: the plugin's change is results/x64_21c/tile_combine_not_kept.diff (apply it to
# k_gemm_tma.cu to rerun this script; lab/NOTES.md "in-tile split-K combine").
# 1. Bits: cuda_gemm_lab --splitk (SmallMChecks + PrefillSplitChecks: the default dispatch at M =
#    64 / 16 / 512 / 300 vs the GEMV rows), --addfuse on the o / down shapes (the split-K tile
#    with the residual ADD, M = 9 / 16 / 33 / 64, 3 and 1 pieces), --group (gate/up, q/k/v,
#    ragged pair), --smallm at M = 64, 3 pieces on the split-K shapes, tile combine on and off
#    (times too). 2. Greedy md5 old / new (36-token prompt, 48 tokens) on 0.5B / 1B.
# 3. tg64x64 greedy (old new new old) x 2 on 0.5B / 1B (+ new with =0 once a model), 0.5B tg128
# once a side, 8B x64 old new new old (as the deadline allows). 4. The CUDA suites on the new plugin.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-115}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
G=${G:-/tmp/gpu}
tar xJf .dev/bundle21.tar.xz -C /tmp
O=/tmp/bundle; B=/tmp/new
xz -dc $G/old_cuda.so.xz > $O/lib/tessera/backends/libtessera_backend_cuda.so
rm -rf $B && cp -r $O $B
xz -dc $G/libtessera_backend_cuda.so.xz > $B/lib/tessera/backends/libtessera_backend_cuda.so
xz -dc $G/cuda_gemm_lab.xz > $B/bin/cuda_gemm_lab && chmod +x $B/bin/cuda_gemm_lab
P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so | cut -c1-12
wait_ck() { while [ ! -f /tmp/$1.done ] && left; do sleep 1; done; }
export LD_LIBRARY_PATH=$B/lib
L=$B/bin/cuda_gemm_lab
echo "=== lab --splitk $(t)"
timeout 30 $L --splitk > $OUT/lab_splitk.log 2>&1; rc=$?; echo "rc=$rc"
grep -E "summary|FAILED" $OUT/lab_splitk.log | head -5; grep -c " ok" $OUT/lab_splitk.log
[ $rc = 124 ] && { echo "HANG: the tile combine never finished; stop"; exit 1; }
echo "=== lab --addfuse (o, down) $(t)"
TESSERA_LAB_SHAPES=0.5B.o,0.5B.down,1B.o,1B.down,8B.o,8B.down timeout 50 $L --addfuse \
  > $OUT/lab_addfuse.log 2>&1; echo "rc=$?"
grep -E "summary|DIFF" $OUT/lab_addfuse.log | head -8; grep -c "^addfuse" $OUT/lab_addfuse.log
echo "=== lab --group (gate/up, q/k/v, ragged) $(t)"
TESSERA_LAB_SHAPES=0.5B.gateup,1B.gateup,0.5B.qkv,1B.qkv,ragged_plain timeout 40 $L --group \
  > $OUT/lab_group.log 2>&1; echo "rc=$?"
grep -E "summary|FAILED" $OUT/lab_group.log | head -5
for tc in 1 0; do left || break
  echo "=== lab --smallm M=64 3 pieces, split-K shapes, TESSERA_CUDA_TMA_TILE_COMBINE=$tc $(t)"
  TESSERA_CUDA_TMA_TILE_COMBINE=$tc TESSERA_LAB_M=64 TESSERA_LAB_TERMS=3 \
    TESSERA_LAB_SHAPES=0.5B.down,1B.q_o,1B.down,8B.q_o,8B.down timeout 60 $L --smallm \
    > /tmp/lab_smallm_tc$tc.log 2>&1; echo "rc=$?"
  { echo "##### TESSERA_CUDA_TMA_TILE_COMBINE=$tc"; cat /tmp/lab_smallm_tc$tc.log; } >> $OUT/lab_smallm.log
  grep -E "^smallm" /tmp/lab_smallm_tc$tc.log | awk '{l = $2; for (i = 3; i <= NF; ++i)
    if ($i ~ /^(default|tma128x64k|tma128x64pk)=/) l = l " " $i; print l}'
  grep -E "summary" /tmp/lab_smallm_tc$tc.log
done
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
for s in qwen2.5-0.5b llama-3.2-1b; do wait_ck $s; for side in old new; do d=$B; [ $side = old ] && d=$O
  LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 \
    2>/dev/null > /tmp/md_${s}_$side.txt
  echo "  $s $side md5 $(md5sum < /tmp/md_${s}_$side.txt | cut -c1-12) bytes $(wc -c < /tmp/md_${s}_$side.txt)"
done; done
x64() {  # x64 SIDE CKPT [ENV...]: tg64x64 greedy -r 1
  local side=$1 s=$2 d=$B; shift 2; [ $side = old ] && d=$O
  local o; o=$(env "$@" TESSERA_BENCH_STEP_TIMES=1 LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench \
    --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1)
  { echo "##### $s $side $*"; echo "$o"; } >> $OUT/engine.log
  echo "  $s $side $* $(echo "$o" | grep -E '\| tg' | awk -F'|' '{print $3}' | awk '{print $1}') t/s," \
    "$(echo "$o" | grep -E 'bench steps: 64 x' | sed 's/.*forward //') $(echo "$o" | grep -ciE 'error|fail')"; }
echo "=== tg64x64 greedy old new new old (+ new TILE_COMBINE=0) $(t)"
for order in "old new" "new old" "old new" "new old"; do for s in qwen2.5-0.5b llama-3.2-1b; do
  for side in $order; do left && x64 $side $s; done; done; done | tee $OUT/ab.log
for s in qwen2.5-0.5b llama-3.2-1b; do left && x64 new $s TESSERA_CUDA_TMA_TILE_COMBINE=0; done | tee -a $OUT/ab.log
echo "=== 0.5B tg128 old / new $(t)"
for side in old new; do left || break; d=$B; [ $side = old ] && d=$O
  echo "  $side $(LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda /tmp/qwen2.5-0.5b \
    -p 16 -n 128 -r 2 2>&1 | grep -E 'tg128')"; done | tee -a $OUT/ab.log
echo "=== CUDA suites, new plugin (defaults) $(t)"
left && cuda_suites
echo "=== 8B x64 old new new old $(t)"
wait_ck llama-3.1-8b; ls /tmp/llama-3.1-8b.done
for side in old new new old; do left && x64 $side llama-3.1-8b; done | tee -a $OUT/ab.log
echo "total $(t)"
