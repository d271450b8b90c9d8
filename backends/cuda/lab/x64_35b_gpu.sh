#!/bin/bash
# x64_35b_gpu.sh BUNDLE_TAR (thirty-fifth session, cu35-x64, second call): engine tg64x64 greedy
# with knob settings by environment, interleaved, and the greedy md5 under each. SETS: the
# settings, each NAME=ENV[,ENV...] ("base=" for the defaults); MODELS, ROUNDS (default 2).
# The tar holds bundle/ (ci/bundle.sh --gpu-tests). Logs under $OUT.
T=${1:?bundle tar}
W=/tmp/x35b; mkdir -p $W; tar -C $W -xJf "$T"; B=$W/bundle; P=$B/lib/tessera/backends
export LD_LIBRARY_PATH=$B/lib
. backends/cuda/lab/lab_common.sh
MODELS=${MODELS:-llama-3.1-8b llama-3.2-1b qwen2.5-0.5b}
make_ckpts $MODELS
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
envs() { echo "$1" | cut -d= -f2- | tr ',' ' '; }
x64() {  # setting model
  env $(envs "$1") TESSERA_BENCH_STEP_TIMES=1 TESSERA_BACKEND_PATH=$P timeout 150 $B/bin/engine bench /tmp/$2 \
    --backend cuda -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1 | grep -E '^\| tg|step' |
    awk -F'|' '/tg/ {printf "%s ", $4} !/tg/ {sub(/.*forward /, ""); sub(/ a step.*/, ""); printf "[%s] ", $0}'
}
PROMPT=$(python3 -c "print(' '.join('t%d' % (i % 50) for i in range(36)))")
for m in $MODELS; do
  wait_ckpt $m
  for r in $(seq 1 ${ROUNDS:-2}); do
    for s in $SETS; do echo "x64 $m ${s%%=*}: $(x64 "$s" $m)"; done
  done
  for s in $SETS; do
    echo "$m ${s%%=*} md5: $(env $(envs "$s") TESSERA_BACKEND_PATH=$P timeout 120 $B/bin/engine run /tmp/$m --backend cuda -n 48 --temperature 0 "$PROMPT" 2>/dev/null | md5sum)"
  done
done
