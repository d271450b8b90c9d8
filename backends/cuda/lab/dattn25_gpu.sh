#!/bin/bash
# cu25-dattn's GPU calls (twenty-fifth session): the batch-1 decode attention call (T = S = 1) on
# DecOneKernel (k_attention.cu, TESSERA_CUDA_ATTN_TC_DEC1 = seq_max: up to that many 64-key
# chunks in one block, no cluster barrier; 0 = the cluster-split tiles as before).
# Carries .dev/cu25-dattn/cN.tar.xz = bundle/: bundle25 without cuda_gemv_lab and the Vulkan /
# level-zero / OpenCL plugins ("old" = its CUDA plugin, HEAD ab82b47), bundle/new/ = the stripped
# CUDA plugin ("new") and bundle/bin/bench_cuda_kernels built with
# results/dattn25/dec_one_not_kept.diff applied (not kept: the tree has neither), this script.
# STEPS (words, in this order): lab (bit checks + --attention-dec25 times), labchk (the bit
# checks alone), ncu (DEC1 = 0 with and without cache flushes, DEC1 = 2), md (greedy md5 old /
# new / n2; call 1: n1), small (tg128 0.5B, 1B: old n2 n1 n3 n8 n2 old), small3 (tg128 0.5B,
# 1B: old new new old, three rounds), suites (CUDA suites + argmax graph replay, new), big (8B:
# md5 old / new, tg128 old new new old), x64 (tg64x64 greedy old new new old). No step starts
# past $DEADLINE s. "new" = the plugin's defaults (call 1: DEC1=2 at both head dims; call 2:
# DEC1=1 at D = 64, 0 at D = 128); nK = new with TESSERA_CUDA_ATTN_TC_DEC1=K.
# Call 1: `rm -rf /tmp/bundle && tar xJf .dev/cu25-dattn/c1.tar.xz -C /tmp &&
#   STEPS="lab ncu md small" DEADLINE=115 OUT=$OUT bash /tmp/bundle/dattn25_gpu.sh`;
# call 2: c2.tar.xz, STEPS="labchk md small3 suites big x64" DEADLINE=95.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-150}; STEPS=${STEPS:-lab md small big suites}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
t() { echo "[t=$(( $(date +%s) - T0 )) s]"; }
has() { case " $STEPS " in *" $1 "*) left ;; *) false ;; esac; }
. backends/cuda/lab/lab_common.sh
CK="qwen2.5-0.5b llama-3.2-1b"
case " $STEPS " in *" big "*|*" x64 "*) CK="$CK llama-3.1-8b" ;; esac
case " $STEPS " in *" md "*|*" small"*|*" big "*|*" x64 "*) make_checkpoints $CK ;; esac
N=/tmp/bundle; O=/tmp/oldb; rm -rf $O && cp -r $N $O
cp $N/new/libtessera_backend_cuda.so $N/lib/tessera/backends/
B=$N; P=$N/lib/tessera/backends; export LD_LIBRARY_PATH=$N/lib; L=$N/bin/bench_cuda_kernels
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $P/libtessera_backend_cuda.so | cut -c1-12
wait_ck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
eng() {  # eng SIDE ARGS...: old, new, nK (new with TESSERA_CUDA_ATTN_TC_DEC1=K)
  local d=$N e=X_NONE=1; [ $1 = old ] && d=$O
  case $1 in n[0-9]*) e=TESSERA_CUDA_ATTN_TC_DEC1=${1#n} ;; esac; shift
  env $e LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine "$@"; }
if has lab || has labchk; then
  echo "=== lab --attention-tc 1024 checks (new defaults) $(t)"
  timeout 120 $L --attention-tc 1024 checks > $OUT/lab_checks.log 2>&1; echo "rc=$?"
  grep -E "FAIL|summary|tc_decode_one_sweep|tc_decode_sweep|tc_decode_pdl|tc_batch_tiles" $OUT/lab_checks.log | head -16
  echo "ok checks: $(grep -c ' ok$' $OUT/lab_checks.log)"
fi
if has lab; then
  echo "=== lab --attention-dec25 under DEC1=0 (v13 = the cluster split as before) $(t)"
  TESSERA_CUDA_ATTN_TC_DEC1=0 timeout 60 $L --attention-dec25 > /tmp/lab_times.log 2>&1; echo "rc=$?"
  head -1 /tmp/lab_times.log
  # time dec25_MODE_vV keys=K Hq= Hkv= D= round=R us=X -> mean of the rounds, a row per
  # (shape, mode, keys), a column per variant.
  python3 - /tmp/lab_times.log > $OUT/lab_summary.txt << 'PY'
import collections, re, sys
s, n, vs = collections.defaultdict(float), collections.defaultdict(int), set()
for ln in open(sys.argv[1]):
    m = re.match(r"time dec25_(\w+)_v(\d+) keys=(\d+) Hq=(\d+) Hkv=\d+ D=(\d+) round=\d+ us=([\d.]+)", ln)
    if not m: continue
    mode, v, k, hq, d, us = m.groups()
    key = (f"{hq}/{d}", mode, int(k)); s[key, int(v)] += float(us); n[key, int(v)] += 1; vs.add(int(v))
vs = sorted(vs)
print("shape mode keys " + " ".join(f"v{v}" for v in vs))
for key in sorted({k for k, _ in s}):
    print(f"{key[0]} {key[1]} {key[2]} " + " ".join(f"{s[key, v] / max(n[key, v], 1):.2f}" for v in vs))
PY
  cat $OUT/lab_summary.txt
fi
if has ncu; then
  NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2> /dev/null | head -1)
  for c in "0 all" "0 none" "2 all"; do
    left || break
    set -- $c
    echo "=== ncu DEC1=$1 --cache-control $2: 16 / 144 / 1024 keys, 32/8 D 128 then 14/2 D 64 $(t)"
    TESSERA_CUDA_ATTN_TC_DEC1=$1 timeout 60 "$NCU" --clock-control none --cache-control $2 -k regex:Kernel \
      --section SourceCounters --section WarpStateStats --section SpeedOfLight --section LaunchStats \
      --import-source no -f -o /tmp/ncu_$1_$2 $L --attention-dec-ncu > /tmp/ncu.log 2>&1
    echo "rc=$?"
    "$NCU" --import /tmp/ncu_$1_$2.ncu-rep --page raw --csv > /tmp/ncu_raw.csv 2>&1
    "$NCU" --import /tmp/ncu_$1_$2.ncu-rep --page source --csv --print-source sass > /tmp/ncu_source.csv 2>&1
    python3 backends/cuda/lab/dattn19_ncu.py /tmp/ncu_raw.csv /tmp/ncu_source.csv > $OUT/ncu_$1_$2.txt 2>&1
    grep -vE '^\s+(0x|[0-9a-f]{4})' $OUT/ncu_$1_$2.txt | head -40
  done
fi
PR=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 4))")
if has md; then
  for s in qwen2.5-0.5b llama-3.2-1b; do
    wait_ck $s; echo "=== greedy md5 $s $(t)"
    for side in old new n2; do
      eng $side --backend cuda run /tmp/$s "$PR" --raw -n 48 --temperature 0 2> /dev/null > /tmp/md_${s}_$side.txt
      echo "  $side md5 $(md5sum < /tmp/md_${s}_$side.txt | cut -c1-12) bytes $(wc -c < /tmp/md_${s}_$side.txt)"
    done
  done
fi
tg() {  # tg SIDE CKPT
  left || return
  echo "  $2 $1 $(eng $1 bench --backend cuda /tmp/$2 -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg|rror" | awk -F'|' '{print $3}')" |
    tee -a $OUT/ab.log
}
if has small; then
  for s in qwen2.5-0.5b llama-3.2-1b; do
    wait_ck $s; echo "=== tg128 $s (-r 2) $(t)"
    for side in old new n1 n3 n8 new old; do tg $side $s; done
  done
fi
if has small3; then
  for s in qwen2.5-0.5b llama-3.2-1b; do
    wait_ck $s; echo "=== tg128 $s (-r 2), three rounds $(t)"
    for side in old new new old old new new old old new new old; do tg $side $s; done
  done
fi
if has suites; then
  echo "=== CUDA suites, new plugin (defaults) $(t)"
  cuda_suites
  TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 > $OUT/argmax.log 2>&1
  echo "cuda_argmax_graph_test rc=$? $(grep -E '^\[  (PASSED|FAILED)' $OUT/argmax.log | tr '\n' ' ')"
fi
if has big; then
  wait_ck llama-3.1-8b; echo "=== greedy md5 llama-3.1-8b $(t)"
  for side in old new; do
    eng $side --backend cuda run /tmp/llama-3.1-8b "$PR" --raw -n 48 --temperature 0 2> /dev/null > /tmp/md_8b_$side.txt
    echo "  $side md5 $(md5sum < /tmp/md_8b_$side.txt | cut -c1-12) bytes $(wc -c < /tmp/md_8b_$side.txt)"
  done
  echo "=== tg128 llama-3.1-8b (-r 2) $(t)"
  for side in old new new old; do tg $side llama-3.1-8b; done
fi
if has x64; then
  for s in $CK; do
    wait_ck $s; echo "=== tg64x64 greedy $s $(t)"
    for side in old new new old; do
      left && echo "  $s $side $(eng $side bench --backend cuda /tmp/$s -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1 |
        grep -E "\| tg|rror" | awk -F'|' '{print $3}')" | tee -a $OUT/ab.log
    done
  done
fi
echo "total $(t)"
