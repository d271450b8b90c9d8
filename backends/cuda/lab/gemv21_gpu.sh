#!/bin/bash
# cu21-gemv's GPU call (twenty-first session), from the repo root, carrying .dev/bundle21.tar.xz
# (HEAD's relocatable bundle: engine, plugins, test binaries) and .dev/cu21-gemv/gemv21.tar.xz
# (gemv21/: this tree's stripped CUDA plugin, cuda_gemv_lab built from this tree ("new") and from
# HEAD's kernels with this tree's lab source ("old"), gemv21_ncu.py, this script).
# (1) Where a small GEMV's time goes: ncu source counters + warp states (clocks as they run, the
#     4th launch of `cuda_gemv_lab --dec17` with GEMV_LAB_NCU=1) of the 0.5B o, down (+ residual),
#     norm + q/k/v and norm + gate/up at M = 1; per-instruction stall listings (gemv21_ncu.py).
# (2) The split-K combine with one acq_rel atomic and one load round trip (GemvTask): lab bit
#     checks (memcmp vs the GEMM rows / separate launches), --dec17 old new old new, CUDA suites,
#     greedy md5 old / new (0.5B, 1B, 8B), tg128 old new new old (0.5B, 1B; 8B once a side).
# Run: `tar xJf .dev/cu21-gemv/gemv21.tar.xz -C /tmp && OUT=$OUT bash /tmp/gemv21/gemv21_gpu.sh`.
# Logs in $OUT (results/gemv21/), at most 8 files.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-235}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
G=/tmp/gemv21; [ -d $G ] || tar xJf .dev/cu21-gemv/gemv21.tar.xz -C /tmp
B=/tmp/bundle; [ -d $B/bin ] || tar xJf .dev/bundle21.tar.xz -C /tmp
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf /tmp/newp && cp -r $B /tmp/newp && cp $G/libtessera_backend_cuda.so /tmp/newp/lib/tessera/backends/
export LD_LIBRARY_PATH=$B/lib
md5sum $B/lib/tessera/backends/libtessera_backend_cuda.so /tmp/newp/lib/tessera/backends/libtessera_backend_cuda.so | cut -c1-12
side_dir() { [ $1 = old ] && echo $B || echo /tmp/newp; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }

echo "=== lab bit checks (new lab: GEMV_ONLY, SWIGLU_ONLY, --quick) $(date +%T)"
GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 90 $G/cuda_gemv_lab --quick > $OUT/lab_checks.log 2>&1
echo "rc=$? same-bits lines $(grep -c 'same bits' $OUT/lab_checks.log), checked lines $(grep -c '^checked' $OUT/lab_checks.log)"
grep -E "FAILED|DIFFERENT|failures|rror" $OUT/lab_checks.log | head -8
el
echo "=== lab --dec17 (M = 1, PDL, weights past L2) old new old new $(date +%T)"
for side in old new old new; do
  L=$G/cuda_gemv_lab; [ $side = old ] && L=$G/cuda_gemv_lab.old
  GEMV_LAB_TAG=$side timeout 60 $L --dec17 >> $OUT/lab_dec17.log 2>&1
done
grep -E "^dec17 (05B|1B)" $OUT/lab_dec17.log | sort -s -k2,2 | awk '{print $2, $3, $4}' | paste - - - - | column -t
el
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"
mkdir -p /tmp/ncu
ncu1() {  # ncu1 SIDE NAME: the 4th launch of NAME
  local side=$1 s=$2 L=$G/cuda_gemv_lab; [ $side = old ] && L=$G/cuda_gemv_lab.old
  GEMV_LAB_DEC17_ONLY=$s GEMV_LAB_NCU=1 timeout 60 $NCU --clock-control none -k regex:Gemv \
    --launch-skip 3 --launch-count 1 --section SourceCounters --section WarpStateStats \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section SchedulerStats \
    --section MemoryWorkloadAnalysis --import-source no -f -o /tmp/ncu/${side}_$s $L --dec17 > /tmp/ncu/${side}_$s.log 2>&1
  echo "  $side $s rc=$?"
  $NCU --import /tmp/ncu/${side}_$s.ncu-rep --page details > /tmp/ncu/${side}_${s}_details.txt 2>&1
  $NCU --import /tmp/ncu/${side}_$s.ncu-rep --page source --csv --print-source sass > /tmp/ncu/${side}_${s}_source.csv 2>&1
  python3 $G/gemv21_ncu.py /tmp/ncu/${side}_${s}_source.csv > /tmp/ncu/${side}_${s}_stalls.txt 2>&1
  grep -E "^ +(Duration|DRAM Throughput|Registers Per|Grid Size|Block Size|Elapsed Cycles)" /tmp/ncu/${side}_${s}_details.txt | tr -s ' ' | tr '\n' ';'; echo
  head -2 /tmp/ncu/${side}_${s}_stalls.txt
}
if [ -n "$NCU" ]; then
  echo "=== ncu (4th launch each) $(date +%T)"
  for s in 05B-o-res 05B-down-res 05B-norm-qkv 05B-norm-gate-up; do left && ncu1 old $s; done
  for s in 05B-down-res 05B-o-res; do left && ncu1 new $s; done
  (cd /tmp/ncu && tar czf $OUT/ncu.tgz *_details.txt *_stalls.txt *_source.csv)
fi
el
if left; then
  echo "=== CUDA suites (new plugin)"; P=/tmp/newp/lib/tessera/backends; cuda_suites
  echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
  el
fi
md5s() {  # md5s SHAPE...: greedy 48 tokens per side
  local s side d
  for s in "$@"; do
    left || return
    waitck $s
    for side in old new; do d=$(side_dir $side)
      LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
      echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -c < /tmp/run_${s}_$side.txt) bytes"
    done
  done
  el
}
rounds() {  # rounds N SHAPE...: tg128 old new new old
  local r s side; local n=$1; shift
  for r in $(seq 1 $n); do
    for s in "$@"; do
      left || return
      waitck $s
      echo "=== $s tg128 round $r"
      for side in old new new old; do ab $side /tmp/$s -p 16 -n 128 -r 2; done
      el
    done
  done
}
echo "=== greedy md5 (48 tokens) old / new"
md5s qwen2.5-0.5b llama-3.2-1b
rounds 2 qwen2.5-0.5b llama-3.2-1b
md5s llama-3.1-8b
if left; then waitck llama-3.1-8b; echo "=== llama-3.1-8b tg128 old new"
  for side in old new; do ab $side /tmp/llama-3.1-8b -p 16 -n 128 -r 2; done; fi
echo "=== done"; el
