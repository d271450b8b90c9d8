#!/bin/bash
# cu21-x64's second GPU call (twenty-first session), from the repo root, carrying
# .dev/bundle21.tar.xz (HEAD b104649's bundle = "old") and .dev/cu21-x64/gpu.tar (this script, the
# final CUDA plugin and cuda_gemm_lab, stripped, xz = "new": TESSERA_CUDA_GEMM_GROUP_PLAIN on by
# default (0.5B / 1B gate/up in one launch of whole tiles) and the 1B o on the split-K TMA tile).
# Confirms call 1 with the defaults: lab bits (--addfuse on the 1B o and the gate/up members,
# --group on the gate/up groups and a ragged pair), greedy md5 old / new (36-token prompt),
# tg64x64 greedy old new new old (call 1 ran four pairs a model and batch-1 tg128), the CUDA suites
# on the new plugin.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-50}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b
G=${G:-/tmp/gpu}
tar xJf .dev/bundle21.tar.xz -C /tmp
O=/tmp/bundle; B=/tmp/new; rm -rf $B && cp -r $O $B
xz -dc $G/libtessera_backend_cuda.so.xz > $B/lib/tessera/backends/libtessera_backend_cuda.so
xz -dc $G/cuda_gemm_lab.xz > $B/bin/cuda_gemm_lab && chmod +x $B/bin/cuda_gemm_lab
P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so | cut -c1-12
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
L=$B/bin/cuda_gemm_lab
echo "=== lab --addfuse (1B o, 0.5B / 1B gate/up members) $(t)"
TESSERA_LAB_SHAPES=1B.o,0.5B.gateup,1B.gateup timeout 40 $L --addfuse > $OUT/lab_addfuse.log 2>&1; echo "rc=$?"
grep -E "^addfuse|^members|summary|DIFF" $OUT/lab_addfuse.log | head -24
echo "=== lab --group (gate/up, ragged pair, 1B o) $(t)"
TESSERA_LAB_SHAPES=0.5B.gateup,1B.gateup,ragged_plain timeout 40 $L --group > $OUT/lab_group.log 2>&1; echo "rc=$?"
grep -E "summary|FAILED" $OUT/lab_group.log | head -5
x64() {  # x64 SIDE CKPT: tg64x64 greedy -r 1
  local side=$1 s=$2 d=$B; [ $side = old ] && d=$O
  local o; o=$(TESSERA_BENCH_STEP_TIMES=1 LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda \
    /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1)
  { echo "##### $s $side"; echo "$o"; } >> $OUT/engine.log
  echo "  $s $side $(echo "$o" | grep -E '\| tg' | awk -F'|' '{print $3}' | awk '{print $1}') t/s," \
    "$(echo "$o" | grep -E 'bench steps: 64 x' | sed 's/.*forward //') $(echo "$o" | grep -ciE 'error|fail')"; }
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
for s in qwen2.5-0.5b llama-3.2-1b; do wait_ck $s; for side in old new; do d=$B; [ $side = old ] && d=$O
  LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 \
    2>/dev/null > /tmp/md_${s}_$side.txt
  echo "  $s $side md5 $(md5sum < /tmp/md_${s}_$side.txt | cut -c1-12) bytes $(wc -c < /tmp/md_${s}_$side.txt)"
done; done
echo "=== tg64x64 greedy old new new old $(t)"
for order in "old new" "new old"; do for s in qwen2.5-0.5b llama-3.2-1b; do
  for side in $order; do left && x64 $side $s; done; done; done | tee $OUT/ab.log
echo "=== CUDA suites, new plugin (defaults) $(t)"
cuda_suites
echo "total $(t)"
