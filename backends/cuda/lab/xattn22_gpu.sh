#!/bin/bash
# cu22-xattn's GPU call (twenty-second session): the one-query batch decode tiles (kBatch, the
# tg64x64 attention call) as BatchKernel. From the repo root, carrying .dev/bundle22.tar.xz (HEAD
# bcdacb7 + GemvXpOn's bundle = "old") and .dev/cu22-xattn/gpu.tar (this script, the new CUDA
# plugin and bench_cuda_kernels, stripped, xz = "new"; "off" = new with TESSERA_CUDA_ATTN_TC_BATCH=0,
# i.e. RunTile's batch tiles in the new plugin).
# Steps: lab checks (`--attention-tc 1024 checks`: every decode / batch memcmp incl. the new
# BatchKernel vs RunTile cases and the PDL poison checks), lab batch times (64 sequences x 1 / 33 /
# 64 / 128 keys, old vs new tiles, null stream and PDL), ncu of one call each at 33 keys; greedy md5
# old / new (0.5B, 1B); tg64x64 greedy old new new old (0.5B, 1B); batch-1 tg128 0.5B old new;
# CUDA suites on the new plugin; tg64x64 off / new; 8B tg64x64 old new new old if time is left.
# Call 1 (07:25 UTC) ran the first version (32-byte units a thread, LoadOwn's map: twice the L2
# traffic; slower than RunTile's tiles from 64 keys at D = 128); call 2 the band map.
# Run: `mkdir -p /tmp/gpu && tar xf .dev/cu22-xattn/gpu.tar -C /tmp/gpu && OUT=$OUT bash /tmp/gpu/xattn22_gpu.sh`.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-215}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
G=${G:-/tmp/gpu}
tar xJf .dev/bundle22.tar.xz -C /tmp
O=/tmp/bundle; B=/tmp/new; rm -rf $B && cp -r $O $B
xz -dc $G/libtessera_backend_cuda.so.xz > $B/lib/tessera/backends/libtessera_backend_cuda.so
xz -dc $G/bench_cuda_kernels.xz > $B/bin/bench_cuda_kernels && chmod +x $B/bin/bench_cuda_kernels
P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so | cut -c1-12
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
L=$B/bin/bench_cuda_kernels
echo "=== lab --attention-tc 1024 checks (new plugin's kernels) $(t)"
timeout 70 $L --attention-tc 1024 checks > $OUT/lab_checks.log 2>&1; echo "rc=$?"
grep -E "FAIL|summary|tc_batch_tiles|tc_decode_pdl|tc_decode_sweep|tc_decode_cases" $OUT/lab_checks.log | head -20
echo "ok checks: $(grep -c ' ok$' $OUT/lab_checks.log)"
echo "=== lab --attention-batch (us a call; old = RunTile's tiles, new = BatchKernel) $(t)"
timeout 40 $L --attention-batch > $OUT/lab_batch.log 2>&1; echo "rc=$?"
awk '/^time batch64/ { key=$2" "$3" "$4" "$5" "$6; split($8,u,"="); s[key]+=u[2]; n[key]++ }
  END { for (x in s) printf "%s mean_us=%.2f (n=%d)\n", x, s[x]/n[x], n[x] }' $OUT/lab_batch.log | sort -k3,3 -k5,5 -k2,2V -k1,1
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2> /dev/null | head -1)
echo "=== ncu ($NCU): one batch call each (old, new) at 33 keys, 3 shapes $(t)"
if [ -n "$NCU" ]; then
  timeout 60 "$NCU" --clock-control none -k regex:Kernel --section SpeedOfLight --section LaunchStats \
    --section Occupancy --section WarpStateStats -f -o /tmp/ncu_b $L --attention-batch ncu > /tmp/ncu_b.log 2>&1
  echo "rc=$?"; tail -2 /tmp/ncu_b.log
  "$NCU" --import /tmp/ncu_b.ncu-rep --page details > $OUT/ncu_details.txt 2>&1
  grep -E "Kernel<|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Waves Per SM|Block Limit (Reg|Shared)|Warp Cycles Per Issued|Dynamic Shared" $OUT/ncu_details.txt | sed 's/  */ /g' | head -70
fi
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
echo "=== greedy md5 (48 tokens) $(t)"
for s in qwen2.5-0.5b llama-3.2-1b; do wait_ck $s; for side in old new; do d=$B; [ $side = old ] && d=$O
  LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 \
    2>/dev/null > /tmp/md_${s}_$side.txt
  echo "  $s $side md5 $(md5sum < /tmp/md_${s}_$side.txt | cut -c1-12) bytes $(wc -c < /tmp/md_${s}_$side.txt)"
done; done
x64() {  # x64 SIDE CKPT: tg64x64 greedy -r 1
  local side=$1 s=$2 d=$B e=X_NONE=1; [ $side = old ] && d=$O; [ $side = off ] && e=TESSERA_CUDA_ATTN_TC_BATCH=0
  local o; o=$(env $e TESSERA_BENCH_STEP_TIMES=1 LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda \
    /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1)
  { echo "##### $s $side"; echo "$o"; } >> $OUT/engine.log
  echo "  $s $side $(echo "$o" | grep -E '\| tg' | awk -F'|' '{print $3}' | awk '{print $1}') t/s," \
    "$(echo "$o" | grep -E 'bench steps: 64 x' | sed 's/.*forward //') $(echo "$o" | grep -ciE 'error|fail')"; }
echo "=== tg64x64 greedy old new new old old new new old (0.5B, 1B) $(t)"
for order in "old new" "new old" "old new" "new old"; do for s in qwen2.5-0.5b llama-3.2-1b; do
  for side in $order; do left && x64 $side $s; done; done; done | tee $OUT/ab.log
echo "=== batch-1 tg128 0.5B (-p 16 -n 128 -r 2) old new $(t)"
for side in old new; do d=$B; [ $side = old ] && d=$O
  echo "  $side $(LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda /tmp/qwen2.5-0.5b -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg' | awk -F'|' '{print $3}')"
done | tee -a $OUT/ab.log
echo "=== CUDA suites, new plugin (defaults) $(t)"
cuda_suites
echo "=== tg64x64 0.5B / 1B: off (new plugin, TESSERA_CUDA_ATTN_TC_BATCH=0) new $(t)"
for s in qwen2.5-0.5b llama-3.2-1b; do for side in off new; do left && x64 $side $s; done; done | tee -a $OUT/ab.log
echo "=== 8B tg64x64 old new new old (if time) $(t)"
if left; then wait_ck llama-3.1-8b; for side in old new new old; do left && x64 $side llama-3.1-8b; done | tee -a $OUT/ab.log; fi
echo "total $(t)"
