#!/bin/bash
# cu21-x64's GPU call (twenty-first session), from the repo root, carrying .dev/bundle21.tar.xz
# (HEAD b104649's bundle = "old") and .dev/cu21-x64/gpu.tar (this script, the new CUDA plugin and
# cuda_gemm_lab, stripped, xz). The new plugin: TESSERA_CUDA_LAB_SKIP also on the decode-batch
# GEMM fusions (M = 9 .. 64), TESSERA_CUDA_GEMM_GROUP_PLAIN (a layer's gate/up tiles in one
# launch, a tile a CTA; 0 = HEAD's kernels, 1 = this call's default: the 1B only, 2 also the 0.5B
# gate/up: the shipped default since this call) and TESSERA_CUDA_GEMM_TMA_SPLITK_MINK (this call's
# plugin: the K from which any weight may take the split-K tile, default 4096 = HEAD; shipped:
# narrow three-piece weights from 2048).
# 1. GEMM lab: --group (bits of every group vs the GEMV rows + timings; PLAIN=0 / 2 timings of
#    the gate/up groups), --smallm at M = 64, 3 pieces on the 0.5B / 1B shapes (every tile
#    configuration vs the bytes, bits vs the GEMV rows), --addfuse (the members path: norm + split
#    + group vs the norm kernel + per-member GEMMs).
# 2. Where a 0.5B / 1B tg64x64 greedy step goes under graphs + PDL: TESSERA_CUDA_LAB_SKIP one
#    launch kind at a time (new plugin, PLAIN=0 = HEAD's kernels; WRONG OUTPUTS, time only).
# 3. Greedy md5 (36-token prompt: prefill runs the 9 .. 64-row paths) old / new / PLAIN=2; tg64x64
#    greedy old / new / p2 interleaved; batch-1 tg128 0.5B; the CUDA suites on the new plugin.
# Steps stop starting past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-180}
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
# 1. Lab.
echo "=== lab --group (default) $(t)"
timeout 100 $L --group > $OUT/lab_group.log 2>&1; echo "rc=$?"
grep -E "gateup|ragged_plain|summary|FAIL" $OUT/lab_group.log | head -30
for pm in 0 2; do left || break
  echo "=== lab --group gate/up, PLAIN=$pm $(t)"
  TESSERA_CUDA_GEMM_GROUP_PLAIN=$pm TESSERA_LAB_SHAPES=0.5B.gateup,1B.gateup,ragged_plain timeout 40 $L --group \
    > $OUT/lab_group_p$pm.log 2>&1; echo "rc=$?"
  grep -E "^group|summary" $OUT/lab_group_p$pm.log | head -12
done
eng() { local side=$1 d=$B; shift; [ $side = old ] && d=$O; LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine "$@"; }
x64() {  # x64 SIDE CKPT TAG ENV...: tg64x64 greedy -r 1, the forward a step
  local side=$1 s=$2 tag=$3; shift 3
  local o; o=$(env "$@" TESSERA_BENCH_STEP_TIMES=1 LD_LIBRARY_PATH=$([ $side = old ] && echo $O || echo $B)/lib \
    timeout 60 $([ $side = old ] && echo $O || echo $B)/bin/engine bench --backend cuda /tmp/$s -p 0 -n 64 \
    --parallel 64 --greedy -r 1 2>&1)
  { echo "##### $s $side [$tag] $*"; echo "$o"; } >> $OUT/engine.log
  echo "  $s $side [$tag] $(echo "$o" | grep -E '\| tg' | awk -F'|' '{print $3}' | awk '{print $1}') t/s," \
    "$(echo "$o" | grep -E 'bench steps: 64 x' | sed 's/.*forward //') $(echo "$o" | grep -ciE 'error|fail')"; }
# 2. md5 and A/B, then the skip breakdown (new plugin, PLAIN=0 = HEAD's kernels), more lab.
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
for s in qwen2.5-0.5b llama-3.2-1b; do wait_ck $s; for v in old new p2 p0 mk; do
  side=$v; ev=X_NONE=1; [ $v = p2 ] && { side=new; ev=TESSERA_CUDA_GEMM_GROUP_PLAIN=2; }
  [ $v = p0 ] && { side=new; ev=TESSERA_CUDA_GEMM_GROUP_PLAIN=0; }
  [ $v = mk ] && { side=new; ev=TESSERA_CUDA_GEMM_TMA_SPLITK_MINK=2048; }
  env $ev LD_LIBRARY_PATH=$([ $side = old ] && echo $O || echo $B)/lib timeout 60 \
    $([ $side = old ] && echo $O || echo $B)/bin/engine --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 \
    2>/dev/null > /tmp/md_${s}_$v.txt
  echo "  $s $v md5 $(md5sum < /tmp/md_${s}_$v.txt | cut -c1-12) bytes $(wc -c < /tmp/md_${s}_$v.txt)"
done; done
echo "=== tg64x64 greedy A/B $(t)"
for order in "old new p2" "p2 new old" "old new" "new old"; do for s in qwen2.5-0.5b llama-3.2-1b; do
  for v in $order; do left || break
    case $v in old) x64 old $s ab X_NONE=1;; new) x64 new $s ab X_NONE=1;;
      p2) x64 new $s ab TESSERA_CUDA_GEMM_GROUP_PLAIN=2;; esac
  done; done; done | tee $OUT/ab.log
for s in qwen2.5-0.5b llama-3.2-1b; do
  wait_ck $s; left || break
  echo "=== $s skip runs (TESSERA_CUDA_LAB_SKIP, PLAIN=0) $(t)"
  if [ $s = qwen2.5-0.5b ]; then
    SK=("MATMUL x3" "MATMUL x2" "small-M) N=896 K=896" "K=4864" "PAGED_ATTENTION" "ROPE" "KV_WRITE" "=SWIGLU" "N=151936")
  else
    SK=("MATMUL x3" "MATMUL x2" "small-M) N=2048 K=2048" "K=8192" "PAGED_ATTENTION" "ROPE" "KV_WRITE" "=SWIGLU" "N=128256")
  fi
  x64 new $s none TESSERA_CUDA_GEMM_GROUP_PLAIN=0
  for k in "${SK[@]}"; do left || break; x64 new $s "$k" TESSERA_CUDA_GEMM_GROUP_PLAIN=0 "TESSERA_CUDA_LAB_SKIP=$k"; done
  x64 new $s none TESSERA_CUDA_GEMM_GROUP_PLAIN=0
  x64 new $s "MATMUL x2, default" "TESSERA_CUDA_LAB_SKIP=MATMUL x2"
done
left && { echo "=== lab --smallm M=64 3 pieces, 0.5B / 1B $(t)"
  TESSERA_LAB_M=64 TESSERA_LAB_TERMS=3 \
    TESSERA_LAB_SHAPES=0.5B.q_o,0.5B.k_v,0.5B.gate_up,0.5B.down,1B.q_o,1B.k_v,1B.gate_up,1B.down \
    timeout 60 $L --smallm > $OUT/lab_smallm.log 2>&1; echo "rc=$?"
  grep -E "summary" $OUT/lab_smallm.log
  echo "=== lab --smallm 1B.q_o, TESSERA_CUDA_GEMM_TMA_SPLITK_MINK=2048 $(t)"
  TESSERA_CUDA_GEMM_TMA_SPLITK_MINK=2048 TESSERA_LAB_M=64 TESSERA_LAB_TERMS=3 TESSERA_LAB_SHAPES=1B.q_o \
    timeout 30 $L --smallm 2>&1 | grep -E "^smallm|summary" | cut -c1-160; }
left && { echo "=== lab --smallm M=64 3 pieces, downs, TESSERA_CUDA_GEMM_TMA_SPLITK=2 (2 waves) $(t)"
  TESSERA_CUDA_GEMM_TMA_SPLITK=2 TESSERA_LAB_M=64 TESSERA_LAB_TERMS=3 TESSERA_LAB_SHAPES=0.5B.down,1B.down \
    timeout 30 $L --smallm > $OUT/lab_smallm_sk2.log 2>&1; echo "rc=$?"
  grep -E "summary" $OUT/lab_smallm_sk2.log; }
left && { echo "=== lab --addfuse $(t)"
  timeout 60 $L --addfuse > $OUT/lab_addfuse.log 2>&1; echo "rc=$?"
  grep -E "gateup|summary|DIFF" $OUT/lab_addfuse.log | head -16; }
echo "=== tg64x64: TESSERA_CUDA_GEMM_TMA_SPLITK=2 (split-K tiles aim at 2 waves) $(t)"
for r in 1; do for s in qwen2.5-0.5b llama-3.2-1b; do left || break
  x64 new $s ab X_NONE=1; x64 new $s sk2 TESSERA_CUDA_GEMM_TMA_SPLITK=2
  [ $s = llama-3.2-1b ] && x64 new $s mk2048 TESSERA_CUDA_GEMM_TMA_SPLITK_MINK=2048; done; done | tee -a $OUT/ab.log
for side in old new; do left && eng $side bench --backend cuda /tmp/qwen2.5-0.5b -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg" |
  sed "s/^/  0.5B tg128 $side /"; done
if [ $(( $(date +%s) - T0 )) -lt $((DEADLINE + 20)) ]; then
  echo "=== CUDA suites, new plugin (defaults) $(t)"
  cuda_suites
fi
echo "total $(t)"
