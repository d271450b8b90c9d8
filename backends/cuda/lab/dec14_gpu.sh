#!/bin/bash
# cu-dec14's GPU calls (fourteenth session), from the repo root, carrying
# .dev/cu-dec14/bundle.tar.gz (this tree's bundle, the CUDA test binaries and labs) and, for
# MODE=2, .dev/old14.tar.xz (HEAD 035ab10's engine and plugins).
#   MODE=1: where a batch-1 decode token goes (measurement only): per shape tg128 wall, GPU time
#           per execute (TESSERA_CUDA_PROFILE=exec, graphs on), per-node profile (graphs off),
#           --greedy (no logits download), PDL / graphs off, matmul_precision=bf16, ncu if there.
#   MODE=2: the fix: correctness (conformance, golden, scheduler, the graph replay tests, greedy
#           text new = old), then engine tg128 A/B interleaved over $SIDES (below).
#           Call 2: SIDES="new old off p2" (p2 needed the reverted GRAPH_PARTS patch);
#           call 3: SIDES="new old ub0".
# Steps stop starting past $DEADLINE s. Logs in $OUT (backends/cuda/lab/results/dec14/).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-170}; MODE=${MODE:-1}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
# 8B first in the background (60-90 s), the small ones meanwhile.
rm -f /tmp/*.done
(for s in llama-3.1-8b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
(for s in qwen2.5-0.5b llama-3.2-1b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
mkdir -p .dev/cu-dec14 && tar xzf .dev/cu-dec14/bundle.tar.gz -C .dev/cu-dec14
B=$PWD/.dev/cu-dec14/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
echo "tools: $(which nsys ncu 2>&1 | tr '\n' ' ') $(ls -d /usr/local/cuda*/bin 2>/dev/null | tr '\n' ' ')"
# eb DIR ARGS...: engine bench of this bundle's engine with the plugins in DIR.
eb() { local d=$1; shift
  TESSERA_BACKEND_PATH=$d timeout 100 $B/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| (pp|tg)[0-9]|rror|bench steps" | sed 's/^/    /'; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }

if [ "$MODE" = 1 ]; then
  for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
    waitck $s; left || break
    L=$OUT/prof_$s.log
    echo "=== $s tg128 default"; eb $P /tmp/$s -p 16 -n 128 -r 3
    echo "=== $s tg128 matmul_precision=bf16"
    TESSERA_BACKEND_PATH=$P timeout 100 $B/bin/engine --backend-opt cuda.matmul_precision=bf16 bench --backend cuda /tmp/$s -p 16 -n 128 -r 3 2>&1 | grep -E "\| tg|rror" | sed 's/^/    /'
    echo "=== $s PROFILE=exec (graphs on)"
    echo "### $s PROFILE=exec" >> $L
    TESSERA_CUDA_PROFILE=exec TESSERA_BACKEND_PATH=$P timeout 100 $B/bin/engine bench --backend cuda /tmp/$s -p 16 -n 128 -r 1 >> $L 2>&1
    grep -E "\| tg|execute of|graph captured|upload|download|synchronize" $L | tail -14 | sed 's/^/    /'
    echo "=== $s PROFILE=1 (per node, graphs off)"
    echo "### $s PROFILE=1" >> $L
    TESSERA_CUDA_PROFILE=1 TESSERA_BACKEND_PATH=$P timeout 100 $B/bin/engine bench --backend cuda /tmp/$s -p 16 -n 128 -r 1 >> $L 2>&1
    grep -E "\| tg|cuda profile:" $L | tail -40 | head -30 | sed 's/^/    /'
    if [ $s != llama-3.1-8b ]; then
      echo "=== $s --greedy (ARGMAX on device: 4-byte download)"; eb $P /tmp/$s -p 16 -n 128 -r 3 --greedy
      echo "=== $s TESSERA_PINNED_LOGITS=0"; TESSERA_PINNED_LOGITS=0 eb $P /tmp/$s -p 16 -n 128 -r 3
      echo "=== $s PDL=0"; TESSERA_CUDA_PDL=0 eb $P /tmp/$s -p 16 -n 128 -r 3
      echo "=== $s GRAPHS=0"; TESSERA_CUDA_GRAPHS=0 eb $P /tmp/$s -p 16 -n 128 -r 3
      echo "=== $s tg128 default again"; eb $P /tmp/$s -p 16 -n 128 -r 3
    fi
    el
  done
  # Kernel durations without PDL overlap or events (0.5B, 3 decode steps), if ncu works here.
  NCU=$(which ncu 2>/dev/null || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  if [ -n "$NCU" ] && left; then
    echo "=== ncu 0.5B -p 4 -n 3 (graphs off) $NCU"
    TESSERA_CUDA_GRAPHS=0 TESSERA_BACKEND_PATH=$P timeout 60 $NCU --clock-control none --metrics gpu__time_duration.sum --csv \
      $B/bin/engine bench --backend cuda /tmp/qwen2.5-0.5b -p 4 -n 3 -r 1 > $OUT/ncu_05b.csv 2> $OUT/ncu_05b.err
    echo "ncu rc=$? lines $(wc -l < $OUT/ncu_05b.csv)"; tail -3 $OUT/ncu_05b.err
  fi
  echo "total $(( $(date +%s) - T0 )) s"
  exit 0
fi

# MODE=2. Sides: "new" = this bundle; "old" = the same bundle with HEAD 035ab10's CUDA plugin
# (.dev/old14.tar.xz); "off" = new with the graph key built every time
# (TESSERA_CUDA_GRAPH_FASTKEY=0); "ub0" = new with every small upload sent on its own
# (TESSERA_CUDA_UPLOAD_BATCH=0); "p2" = new with the execute's graph cut in two
# (TESSERA_CUDA_GRAPH_PARTS=2, call 2's build only: results/dec14/graph_parts.diff).
SIDES=${SIDES:-new old off ub0}
rm -rf /tmp/oldp && cp -r $B /tmp/oldp && mkdir -p /tmp/old14 && tar xJf .dev/old14.tar.xz -C /tmp/old14 &&
  cp /tmp/old14/libtessera_backend_cuda.so /tmp/oldp/lib/tessera/backends/
side_env() { case $1 in off) echo TESSERA_CUDA_GRAPH_FASTKEY=0 ;; p2) echo TESSERA_CUDA_GRAPH_PARTS=2 ;;
  ub0) echo TESSERA_CUDA_UPLOAD_BATCH=0 ;; *) echo X_UNUSED=1 ;; esac; }
side_dir() { [ $1 = old ] && echo /tmp/oldp || echo $B; }
# ab SIDE ARGS...: engine bench (tg) of one side.
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
. backends/cuda/lab/lab_common.sh
echo "=== CUDA suites (new plugin): conformance, golden, scheduler"; cuda_suites
cp $OUT/tests.log $OUT/tests_new.log
for side in $SIDES; do case $side in new|old) continue ;; esac
  echo "=== CUDA suites with $(side_env $side)"; env $(side_env $side) cuda_suites; done
echo "=== graph replay tests (new plugin, each side's knob)"
for side in $SIDES; do [ $side = old ] && continue; e=$(side_env $side)
  echo "  $e: $(env $e TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure|step" | head -4 | tr '\n' ' ')"
done
TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_backend_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED" | head -3
el
echo "=== greedy text per side (md5 of 48 generated tokens)"
for s in qwen2.5-0.5b llama-3.2-1b; do
  waitck $s
  for side in $SIDES; do d=$(side_dir $side)
    env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -w < /tmp/run_${s}_$side.txt) words"
  done
done
el
for s in qwen2.5-0.5b llama-3.2-1b; do
  left || break
  echo "=== $s tg128 A/B ($SIDES, 2 rounds)"
  for r in 1 2; do for side in $SIDES; do ab $side /tmp/$s -p 16 -n 128 -r 3; done; done
  el
done
for s in qwen2.5-0.5b llama-3.1-8b; do
  waitck $s; left || break
  echo "=== $s PROFILE=exec new (host rows)"
  TESSERA_CUDA_PROFILE=exec LD_LIBRARY_PATH=$B/lib timeout 100 $B/bin/engine bench --backend cuda /tmp/$s -p 16 -n 128 -r 1 > $OUT/exec_$s.log 2>&1
  grep -E "\| tg|execute of|graph|Graph|upload|download|synchronize" $OUT/exec_$s.log | sed 's/^/    /'
done
s=llama-3.1-8b
for r in 1 2; do
  left || break
  echo "=== $s tg128 A/B round $r"
  for side in $SIDES; do ab $side /tmp/$s -p 16 -n 128 -r 2; done
  el
done
echo "total $(( $(date +%s) - T0 )) s"
