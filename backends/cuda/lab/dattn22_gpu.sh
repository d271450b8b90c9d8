#!/bin/bash
# cu22-dattn's GPU call (twenty-second session): the batch-1 decode attention on the critical
# path. Carries .dev/cu22-dattn/bundle22f_slim.tar.xz (bundle22f without cuda_gemv_lab and the
# Vulkan labs, 17.5 MB: HEAD 0152eaa = "old") and .dev/cu22-dattn/gpu.tar (this script, the new
# CUDA plugin and bench_cuda_kernels, stripped, xz = "new": the cluster-split
# decode tiles with TESSERA_CUDA_ATTN_TC_DEC=11 by default = 4 + kOptSpec + kOptVPre; "new d4" =
# the new plugin with DEC=4, HEAD's tiles). The plugin / lab are those of
# results/dattn22/spec_vpre_not_kept.diff (not kept; the tree keeps HEAD's tiles).
# Steps: lab checks (`--attention-tc 1024 checks`, new defaults), lab decode times DEC=4 / 11 / 12
# (`--attention-tc 1024`: null stream, PDL, after a copy kernel), greedy md5 old / new (0.5B, 1B,
# 8B), tg128 old new new old (0.5B, 1B), CUDA suites (new), 8B tg128 old new new old, 8B knobs
# (GEMV_O2=2, DEC=4 / 12, PDL=0), 8B skip runs (TESSERA_CUDA_LAB_SKIP=PAGED_ATTENTION, exec
# profile), more 8B pairs until the deadline.
# Run: `mkdir -p /tmp/gpu && tar xf .dev/cu22-dattn/gpu.tar -C /tmp/gpu && OUT=$OUT bash /tmp/gpu/dattn22_gpu.sh`.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-125}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
G=${G:-/tmp/gpu}
tar xJf ${BUNDLE:-.dev/cu22-dattn/bundle22f_slim.tar.xz} -C /tmp
O=/tmp/bundle; B=/tmp/new; rm -rf $B && cp -r $O $B
xz -dc $G/libtessera_backend_cuda.so.xz > $B/lib/tessera/backends/libtessera_backend_cuda.so
xz -dc $G/bench_cuda_kernels.xz > $B/bin/bench_cuda_kernels && chmod +x $B/bin/bench_cuda_kernels
P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so | cut -c1-12
CO=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2> /dev/null | head -1)
[ -n "$CO" ] && "$CO" --dump-resource-usage $P/libtessera_backend_cuda.so 2>/dev/null | grep -A1 -E 'KernelILi(64|128)ELi1ELi4ELi8ELi2ELi0ELi(36|164|420)E' |
  grep -oE 'KernelILi[0-9]+ELi1ELi4ELi8ELi2ELi0ELi[0-9]+E|REG:[0-9]+|STACK:[0-9]+|SHARED:[0-9]+|LOCAL:[0-9]+' | paste -sd' ' | sed 's/ Kernel/\nKernel/g'
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
export LD_LIBRARY_PATH=$B/lib
L=$B/bin/bench_cuda_kernels
echo "=== lab --attention-tc 1024 checks (new defaults: DEC=11) $(t)"
timeout 60 $L --attention-tc 1024 checks > $OUT/lab_checks.log 2>&1; echo "rc=$?"
grep -E "FAIL|summary|tc_decode_pdl" $OUT/lab_checks.log | head -8
echo "ok checks: $(grep -c ' ok$' $OUT/lab_checks.log)"
echo "=== lab decode times (us a call), DEC=4 / 11 / 12 $(t)"
for d in 4 11 12; do
  TESSERA_CUDA_ATTN_TC_DEC=$d timeout 30 $L --attention-tc 1024 > /tmp/lab_t$d.log 2>&1
  echo "DEC=$d rc=$? $(grep -c FAIL /tmp/lab_t$d.log) FAIL lines; $(grep summary /tmp/lab_t$d.log)"
  grep -E "^time attention_decode_paged_(tc_split|pdl_tc_split|pair_tc_split)" /tmp/lab_t$d.log | sed "s/^/d$d /" >> $OUT/lab_times.log
done
# Means over the rounds (lines: dN time NAME keys=K_SHAPE round=R us=X); call 1 printed this
# table wrong (fields off by one: mean_us=0.00); results/dattn22/lab_summary.txt is the fixed awk.
awk '{ split($6,u,"="); k=$3" "$4; s[k" "$1]+=u[2]; n[k" "$1]++; ks[k]=1 }
  END { for (k in ks) printf "%s d4=%.2f d11=%.2f d12=%.2f\n", k, s[k" d4"]/n[k" d4"],
    s[k" d11"]/n[k" d11"], s[k" d12"]/n[k" d12"] }' $OUT/lab_times.log | sed 's/attention_decode_paged_//' | sort
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
md() {  # md CKPT
  for side in old new; do local d=$B; [ $side = old ] && d=$O
    LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$1 "$PR" --raw -n 48 --temperature 0 \
      2>/dev/null > /tmp/md_$1_$side.txt
    echo "  $1 $side md5 $(md5sum < /tmp/md_$1_$side.txt | cut -c1-12) bytes $(wc -c < /tmp/md_$1_$side.txt)"
  done
}
tg() {  # tg SIDE CKPT ENVS: tg128 -r 2
  local side=$1 s=$2 e=${3:-X_NONE=1} d=$B; [ $side = old ] && d=$O
  local o; o=$(env $e LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda /tmp/$s -p 16 -n 128 -r 2 2>&1 |
    grep -E "\| tg128|rror" | awk -F'|' '{print $3}')
  echo "  $s $side $e $o" | tee -a $OUT/ab.log
}
echo "=== greedy md5 (48 tokens) 0.5B, 1B $(t)"
for s in qwen2.5-0.5b llama-3.2-1b; do wait_ck $s; md $s; done
echo "=== tg128 (-r 2) old new new old: 0.5B, 1B $(t)"
for s in qwen2.5-0.5b llama-3.2-1b; do for side in old new new old; do tg $side $s; done; done
echo "=== CUDA suites, new plugin (defaults) $(t)"
cuda_suites
wait_ck llama-3.1-8b
echo "=== 8B greedy md5 $(t)"
md llama-3.1-8b
echo "=== 8B tg128 (-r 2) old new new old $(t)"
for side in old new new old; do tg $side llama-3.1-8b; done
echo "=== 8B knobs $(t)"
tg new llama-3.1-8b TESSERA_CUDA_ATTN_TC_DEC=4
tg new llama-3.1-8b TESSERA_CUDA_ATTN_TC_DEC=12
tg old llama-3.1-8b TESSERA_CUDA_GEMV_O2=2
tg new llama-3.1-8b TESSERA_CUDA_GEMV_O2=2
tg old llama-3.1-8b TESSERA_CUDA_PDL=0
echo "=== 8B skip runs (-r 1, exec profile: us a step) $(t)"
sk() {  # sk SIDE ENVS
  local side=$1 e=$2 d=$B; [ $side = old ] && d=$O
  local o; o=$(env TESSERA_CUDA_PROFILE=exec $e LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda \
    /tmp/llama-3.1-8b -p 16 -n 128 -r 1 2>&1)
  echo "  $side $e step_gpu_us=$(echo "$o" | grep -E 'execute of [0-9]+ nodes \(gpu\)' | awk '{print $8}') tg=$(echo "$o" | grep -E '\| tg128' | awk -F'|' '{print $3}')" | tee -a $OUT/skip.log
}
for a in "old X_NONE=1" "old TESSERA_CUDA_LAB_SKIP=PAGED_ATTENTION" "new X_NONE=1" "new TESSERA_CUDA_GEMV_O2=2" \
  "old TESSERA_CUDA_GEMV_O2=2" "old TESSERA_CUDA_GEMV_O2=2,TESSERA_CUDA_LAB_SKIP=PAGED_ATTENTION"; do
  left || break; sk ${a%% *} "$(echo ${a#* } | tr ',' ' ')"
done
echo "=== 8B more pairs until the deadline $(t)"
for side in new old old new new old; do left || break; tg $side llama-3.1-8b; done
echo "total $(t)"
