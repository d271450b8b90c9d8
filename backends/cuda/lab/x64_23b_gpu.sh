#!/bin/bash
# cu23-x64's second GPU call (twenty-third session, H200), from the repo root, carrying
# .dev/bundle23.tar.xz (HEAD d3227ed's bundle = "old") and .dev/cu23-x64/gpu.tar (this script, the
# new CUDA plugin and cuda_gemm_lab, stripped, xz). The new plugin: TESSERA_CUDA_GEMM_GROUP_WIDE
# (k_gemm_tma.cu GroupWide: a three-piece decode-batch group whose 128 x 64 tiles overflow one
# wave but whose 256 x 64 tiles fill more than half of it, the 8B gate/up, as one launch of whole
# 256-row tiles; default -1 = on where the card's DRAM is >= 4 TB/s, 1 = tma256x64, 2 =
# tma256x64p, 0 = before).
# 1. Bits + lab times: cuda_gemm_lab --group (8B gate/up at M = 64 / 33 from row 5 / 17, every
#    run vs the GEMV rows; WIDE=-1 / 2 / 0; the 0.5B / 1B gate/up and ragged_plain as controls),
#    --addfuse on the 8B gate/up members (norm + split + group vs the norm kernel + each GEMM).
# 2. Greedy md5 (36-token prompt: prefill runs the 17 .. 64-row group) old / new on the three
#    models; tg64x64 greedy 8B old new w2 new old, then (if time is left) the 8B q/k/v as the
#    stream-K group at 128 CTAs (TESSERA_CUDA_GEMM_GROUP_MAXCHUNKS=16: a lab knob of the measured
#    plugin, not kept: results/x64_23/qkv_group_maxchunks_not_kept.diff) beside new,
#    1B / 0.5B old / new controls, WIDE=0 beside new. The CUDA suites on the new plugin
#    (conformance, golden, server_scheduler_test) right after the 8B A/B.
# Steps stop starting past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-75}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b qwen2.5-0.5b llama-3.2-1b
G=${G:-/tmp/gpu}
tar xJf .dev/bundle23.tar.xz -C /tmp
O=/tmp/bundle; B=/tmp/new; rm -rf $B && cp -r $O $B
xz -dc $G/libtessera_backend_cuda.so.xz > $B/lib/tessera/backends/libtessera_backend_cuda.so
xz -dc $G/cuda_gemm_lab.xz > $B/bin/cuda_gemm_lab && chmod +x $B/bin/cuda_gemm_lab
P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so | cut -c1-12
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
L=$B/bin/cuda_gemm_lab
grp() {  # grp LOG: the M = 64 / 33 / 17 lines of a --group log, times only
  python3 - $1 <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
for m in re.finditer(r'group (\S+) fits=(\d)(.*?)(?=\ngroup |\Z)', t, re.S):
    print(' ', m.group(1), 'fits=' + m.group(2), ' '.join('%s=%s' % x for x in re.findall(r' ([a-z_0-9]+)=([0-9.]+)us', m.group(3))))
print(' ', re.findall(r'summary.*', t), 'BITS:', t.count('(BITS)'))
EOF
}
for w in -1 2; do
  echo "=== lab --group 8B.gateup, TESSERA_CUDA_GEMM_GROUP_WIDE=$w $(t)"
  TESSERA_CUDA_GEMM_GROUP_WIDE=$w TESSERA_LAB_TERMS=3 TESSERA_LAB_SHAPES=8B.gateup timeout 40 $L --group \
    > $OUT/lab_group_w$w.log 2>&1; echo "rc=$?"; grp $OUT/lab_group_w$w.log
done
echo "=== lab --group 8B.qkv, TESSERA_CUDA_GEMM_GROUP_MAXCHUNKS=16 GROUP_CTAS=128 (the stream-K group) $(t)"
TESSERA_CUDA_GEMM_GROUP_MAXCHUNKS=16 TESSERA_CUDA_GEMM_GROUP_CTAS=128 TESSERA_LAB_TERMS=3 TESSERA_LAB_SHAPES=8B.qkv \
  timeout 40 $L --group > $OUT/lab_group_qkv.log 2>&1; echo "rc=$?"; grp $OUT/lab_group_qkv.log
echo "=== lab --group controls (0.5B / 1B gate/up, ragged_plain) $(t)"
TESSERA_LAB_SHAPES=0.5B.gateup,1B.gateup,ragged_plain timeout 40 $L --group > $OUT/lab_group_ctl.log 2>&1
echo "rc=$?"; grp $OUT/lab_group_ctl.log | tail -1
echo "=== lab --addfuse 8B.gateup (members: norm + split + group) $(t)"
TESSERA_LAB_SHAPES=8B.gateup timeout 60 $L --addfuse > $OUT/lab_addfuse.log 2>&1; echo "rc=$?"
grep -E "gateup|summary" $OUT/lab_addfuse.log | cut -c1-200 | head -12
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
md() {  # md CKPT SIDE ENV...
  local s=$1 side=$2 d=$B; shift 2; [ $side = old ] && d=$O
  env "$@" LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "$PR" --raw -n 48 \
    --temperature 0 2>/dev/null > /tmp/md_${s}_$side.txt
  echo "  $s $side $* md5 $(md5sum < /tmp/md_${s}_$side.txt | cut -c1-12) bytes $(wc -c < /tmp/md_${s}_$side.txt)"; }
x64() {  # x64 SIDE CKPT TAG ENV...: tg64x64 greedy -r 1, the forward a step
  local side=$1 s=$2 tag=$3 d=$B; shift 3; [ $side = old ] && d=$O
  local o; o=$(env "$@" TESSERA_BENCH_STEP_TIMES=1 LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench \
    --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1)
  { echo "##### $s $side [$tag] $*"; echo "$o"; } >> $OUT/engine.log
  echo "  $s $side [$tag] $(echo "$o" | grep -E '\| tg' | awk -F'|' '{print $3}' | awk '{print $1}') t/s," \
    "$(echo "$o" | grep -E 'bench steps: 64 x' | sed 's/.*forward //' | tr '\n' ' ') $(echo "$o" | grep -ciE 'error|fail')"; }
wait_ck llama-3.1-8b
echo "=== 8B greedy md5 + tg64x64 greedy A/B $(t)"
{ md llama-3.1-8b old X_NONE=1; md llama-3.1-8b new X_NONE=1
  for s in qwen2.5-0.5b llama-3.2-1b; do wait_ck $s; md $s old X_NONE=1; md $s new X_NONE=1; done
  for v in old new w2 new old; do
    case $v in old) x64 old llama-3.1-8b ab X_NONE=1;; new) x64 new llama-3.1-8b ab X_NONE=1;;
      w2) x64 new llama-3.1-8b w2 TESSERA_CUDA_GEMM_GROUP_WIDE=2;; esac
  done
  echo "=== CUDA suites, new plugin (defaults) $(t)"
  cuda_suites
  left && { x64 new llama-3.1-8b qkv16 TESSERA_CUDA_GEMM_GROUP_MAXCHUNKS=16 TESSERA_CUDA_GEMM_GROUP_CTAS=128
    x64 new llama-3.1-8b ab X_NONE=1; }
  for s in llama-3.2-1b qwen2.5-0.5b; do left && { x64 old $s ctl X_NONE=1; x64 new $s ctl X_NONE=1; }; done
  left && { x64 new llama-3.1-8b w0 TESSERA_CUDA_GEMM_GROUP_WIDE=0; x64 new llama-3.1-8b ab X_NONE=1; }
} 2>&1 | tee $OUT/ab.log
echo "total $(t)"
