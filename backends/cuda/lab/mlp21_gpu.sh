#!/bin/bash
# cu21-mlp's GPU call (twenty-first session), from the repo root, carrying .dev/bundle21.tar.xz
# (HEAD b104649's relocatable bundle: engine, plugins, test binaries) and
# .dev/cu21-mlp/mlp21.tar.xz (mlp21/: this tree's stripped CUDA plugin and cuda_gemv_lab, this
# script).
# (A) A grid barrier vs a launch boundary: `cuda_gemv_lab --mlp21` lines "mlp21A": 8 dependent
#     phases as 8 launches (graph + PDL edges) vs one launch with 7 grid barriers (own barrier /
#     cooperative launch + CG grid.sync), tiny phases and phases reading 2 / 8.7 MB (past L2).
# (B) The persistent MLP block (decode_persist.h, k_decode_persist.cu): bit checks against the
#     separate launches (memcmp of y, g, u, h, down, residual out; 0.5B / 1B / 8B and odd
#     shapes, terms 3 and 1, grid / split / prefetch / cooperative variants), then timed in graphs
#     + PDL (weights past L2) against the current 3 launches (and the 2 of the SWIGLU epilogue).
# (C) The engine with TESSERA_CUDA_MLP_PERSIST (plugin.cc ExecuteMlpPersist, default 1): CUDA
#     suites + graph replay, greedy md5 old / new (0.5B, 1B, 8B), tg128 old new new old (-r 2).
# Measured, not kept (lab/NOTES.md "A persistent MLP block"): the plugin and lab it ran were built
# from this tree with results/mlp21/mlp_persist_not_kept.diff applied (`git apply` on b104649;
# build tessera_backend_cuda cuda_gemv_lab, strip both, tar mlp21/ = the two + this script, xz).
# Run: `tar xJf .dev/cu21-mlp/mlp21.tar.xz -C /tmp && OUT=$OUT bash /tmp/mlp21/mlp21_gpu.sh`
# (one call on an H100, 57 s wall).
# Logs in $OUT (results/mlp21/), at most 8 files.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-270}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
[ -d /tmp/mlp21 ] || tar xJf .dev/cu21-mlp/mlp21.tar.xz -C /tmp
B=/tmp/bundle; [ -d $B/bin ] || tar xJf .dev/bundle21.tar.xz -C /tmp
. backends/cuda/lab/lab_common.sh
make_checkpoints qwen2.5-0.5b llama-3.2-1b llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf /tmp/newp && cp -r $B /tmp/newp && cp /tmp/mlp21/libtessera_backend_cuda.so /tmp/newp/lib/tessera/backends/
export LD_LIBRARY_PATH=$B/lib
md5sum $B/lib/tessera/backends/libtessera_backend_cuda.so /tmp/newp/lib/tessera/backends/libtessera_backend_cuda.so | cut -c1-12
side_dir() { [ $1 = old ] && echo $B || echo /tmp/newp; }
side_env() { case $1 in off) echo TESSERA_CUDA_MLP_PERSIST=0 ;; *) echo X_NONE=1 ;; esac; }
ab() { local side=$1 d; d=$(side_dir $1); shift
  env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine bench --backend cuda "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }
waitck() { while [ ! -f /tmp/$1.done ]; do sleep 1; done; }

echo "=== (B) lab bit checks $(date +%T)"
GEMV_LAB_MLP_CHECK_ONLY=1 timeout 100 /tmp/mlp21/cuda_gemv_lab --mlp21 > $OUT/lab_checks.log 2>&1
echo "rc=$? same-bits lines $(grep -c 'same bits' $OUT/lab_checks.log) of $(grep -c '^checked' $OUT/lab_checks.log)"
grep -E "FAILED|DIFFERENT|failures|launch flags|rror" $OUT/lab_checks.log | head -12
el
echo "=== (A) + (B) lab timing $(date +%T)"
GEMV_LAB_MLP_TIME_ONLY=1 timeout 120 /tmp/mlp21/cuda_gemv_lab --mlp21 > $OUT/lab_time.log 2>&1
echo "rc=$?"; grep -E "^mlp21|failed|rror" $OUT/lab_time.log
el

if left; then
  echo "=== (C) CUDA suites (new plugin, default)"; P=/tmp/newp/lib/tessera/backends; cuda_suites
  echo "  graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')"
  el
fi
md5s() {  # md5s SHAPE...: greedy 48 tokens per side
  local s side d
  for s in "$@"; do
    left || return
    waitck $s
    for side in old new off; do d=$(side_dir $side)
      env $(side_env $side) LD_LIBRARY_PATH=$d/lib timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
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
echo "=== (C) greedy md5 (48 tokens) old / new / new with TESSERA_CUDA_MLP_PERSIST=0"
md5s qwen2.5-0.5b llama-3.2-1b
rounds 1 qwen2.5-0.5b llama-3.2-1b
TESSERA_CUDA_PROFILE=exec LD_LIBRARY_PATH=/tmp/newp/lib timeout 60 /tmp/newp/bin/engine bench --backend cuda /tmp/qwen2.5-0.5b -p 16 -n 128 -r 1 > $OUT/prof.log 2>&1
TESSERA_CUDA_MLP_PERSIST=0 TESSERA_CUDA_PROFILE=exec LD_LIBRARY_PATH=/tmp/newp/lib timeout 60 /tmp/newp/bin/engine bench --backend cuda /tmp/qwen2.5-0.5b -p 16 -n 128 -r 1 >> $OUT/prof.log 2>&1
md5s llama-3.1-8b
rounds 1 qwen2.5-0.5b llama-3.2-1b
echo "=== done"; el
