#!/bin/bash
# cu23-x64's first GPU call (twenty-third session, the first H200 session), from the repo root,
# carrying .dev/bundle23.tar.xz (HEAD d3227ed's bundle) and .dev/cu23-x64/gpu.tar (this script,
# HEAD's cuda_gemm_lab, stripped, xz). Where an x64 step goes on the H200, 8B first:
# 1. GEMM lab at M = 64, 3 pieces: --smallm-quick on the 8B shapes (default dispatch, the TMA
#    tiles, split-K at 1 / 2 waves), --group on the 8B q/k/v, o, down, gate/up (members vs the
#    stream-K group at 132 / 66 / 96 / 128 / 264 CTAs).
# 2. tg64x64 greedy (`engine bench CKPT --backend cuda -p 0 -n 64 --parallel 64 --greedy -r 1`)
#    with TESSERA_CUDA_LAB_SKIP one launch kind at a time (WRONG OUTPUTS, time only): 8B, then the
#    0.5B / 1B; TESSERA_CUDA_GEMM_TMA_SPLITK=2 on the 8B.
# Steps stop starting past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-85}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b qwen2.5-0.5b llama-3.2-1b
G=${G:-/tmp/gpu}
tar xJf .dev/bundle23.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib
xz -dc $G/cuda_gemm_lab_head.xz > $B/bin/cuda_gemm_lab && chmod +x $B/bin/cuda_gemm_lab
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
L=$B/bin/cuda_gemm_lab
S8=8B.q_o,8B.k_v,8B.gate_up,8B.down
echo "=== lab --smallm-quick M=64 3 pieces, 8B $(t)"
TESSERA_LAB_M=64 TESSERA_LAB_TERMS=3 TESSERA_LAB_SHAPES=$S8 timeout 40 $L --smallm-quick \
  > $OUT/lab_smallm.log 2>&1; echo "rc=$?"; grep -E "^smallm|summary" $OUT/lab_smallm.log | cut -c1-400
echo "=== lab --smallm-quick, TESSERA_CUDA_GEMM_TMA_SPLITK=2 $(t)"
TESSERA_CUDA_GEMM_TMA_SPLITK=2 TESSERA_LAB_M=64 TESSERA_LAB_TERMS=3 TESSERA_LAB_SHAPES=8B.q_o,8B.down \
  timeout 30 $L --smallm-quick 2>&1 | grep -E "^smallm|summary" | cut -c1-400
echo "=== lab --group 8B $(t)"
TESSERA_LAB_TERMS=3 TESSERA_LAB_SHAPES=8B.qkv,8B.o,8B.down,8B.gateup timeout 60 $L --group \
  > $OUT/lab_group.log 2>&1; echo "rc=$?"
python3 - $OUT/lab_group.log <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
for m in re.finditer(r'group (\S+_M64\S*) fits=(\d)(.*?)(?=\ngroup |\Z)', t, re.S):
    print(m.group(1), 'fits=' + m.group(2), ' '.join('%s=%s' % x for x in re.findall(r' ([a-z_0-9]+)=([0-9.]+)us', m.group(3))))
print(re.findall(r'summary.*', t))
EOF
x64() {  # x64 CKPT TAG ENV...: tg64x64 greedy -r 1, the forward a step
  local s=$1 tag=$2; shift 2
  local o; o=$(env "$@" TESSERA_BENCH_STEP_TIMES=1 timeout 60 $B/bin/engine bench --backend cuda /tmp/$s \
    -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1)
  { echo "##### $s [$tag] $*"; echo "$o"; } >> $OUT/engine.log
  echo "  $s [$tag] $(echo "$o" | grep -E '\| tg' | awk -F'|' '{print $3}' | awk '{print $1}') t/s," \
    "$(echo "$o" | grep -E 'bench steps: 64 x' | sed 's/.*forward //') $(echo "$o" | grep -ciE 'error|fail')"; }
for s in llama-3.1-8b qwen2.5-0.5b llama-3.2-1b; do
  wait_ck $s; left || break
  echo "=== $s skip runs (TESSERA_CUDA_LAB_SKIP) $(t)"
  case $s in
    llama-3.1-8b) SK=("MATMUL x3" "MATMUL x2" "small-M) N=4096 K=4096" "K=14336" "PAGED_ATTENTION" "N=128256");;
    qwen2.5-0.5b) SK=("MATMUL x3" "MATMUL x2" "small-M) N=896 K=896" "K=4864" "PAGED_ATTENTION" "N=151936");;
    *) SK=("MATMUL x3" "MATMUL x2" "small-M) N=2048 K=2048" "K=8192" "PAGED_ATTENTION" "N=128256");;
  esac
  x64 $s none X_NONE=1
  for k in "${SK[@]}"; do left || break; x64 $s "$k" "TESSERA_CUDA_LAB_SKIP=$k"; done
  x64 $s none X_NONE=1
  [ $s = llama-3.1-8b ] && { x64 $s sk2 TESSERA_CUDA_GEMM_TMA_SPLITK=2; x64 $s none X_NONE=1; }
done | tee $OUT/skip.log
echo "total $(t)"
