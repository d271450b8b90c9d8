#!/bin/bash
# cu22-8b's second GPU call (twenty-second session): the final tree's build with
# TESSERA_CUDA_GEMV_O2=1 and TESSERA_CUDA_GEMV_PBAL=1 by default (the final tree has PBAL off by
# default; otherwise the same code), carrying .dev/bundle22.tar.xz and .dev/cu22-8b/b8b.tar.xz
# (that build's stripped CUDA plugin and cuda_gemv_lab).
# Lab GEMV checks with the defaults, `--dec17` 8B lines default vs O2=0 PBAL=0, greedy md5, and
# 8B tg128 old / new (-r 2, sides interleaved, as many as the deadline lets).
# Run: `tar xJf .dev/cu22-8b/b8b.tar.xz -C /tmp && DEADLINE=42 OUT=$OUT bash /tmp/b8/b8_22b_gpu.sh`.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console_b.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-42}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
rm -rf /tmp/bundle && tar xJf .dev/bundle22.tar.xz -C /tmp
O=/tmp/bundle; N=/tmp/newp
rm -rf $N && cp -r $O $N && cp /tmp/b8/libtessera_backend_cuda.so $N/lib/tessera/backends/ &&
  cp /tmp/b8/cuda_gemv_lab $N/bin/
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $N/lib/tessera/backends/libtessera_backend_cuda.so | cut -c1-12
LAB=$N/bin/cuda_gemv_lab
echo "=== lab GEMV + SWIGLU checks (memcmp), defaults $(date +%T)"
LD_LIBRARY_PATH=$N/lib GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 60 $LAB --quick > $OUT/lab_checks_b.log 2>&1
echo "rc=$? shapes $(grep -c '^checked' $OUT/lab_checks_b.log); same-bits lines $(grep -c 'same bits' $OUT/lab_checks_b.log)"
grep -E "FAILED|DIFFERENT|^checks" $OUT/lab_checks_b.log | head -5
for envs in "TESSERA_CUDA_GEMV_O2=0 TESSERA_CUDA_GEMV_PBAL=0" X_NONE=1; do
  env $envs LD_LIBRARY_PATH=$N/lib GEMV_LAB_TAG="${envs// /,}" GEMV_LAB_DEC17_ONLY=8B-o-res,8B-norm-gate-up,8B-norm-head \
    timeout 30 $LAB --dec17 2>&1 | grep -E "^dec17" | sed 's/TESSERA_CUDA_GEMV_//g'
done
el
ab() {  # ab SIDE ENVS: tg128 of the 8B, -r 2
  local side=$1 envs=$2 d=$N; [ $side = old ] && d=$O
  env $envs LD_LIBRARY_PATH=$d/lib timeout 40 $d/bin/engine bench --backend cuda /tmp/llama-3.1-8b -p 16 -n 128 -r 2 2>&1 |
    grep -E "\| tg128|rror" | awk -F'|' -v s="$side" -v e="$envs" '{printf "    %-4s %-26s %s\n", s, e, $3}'
}
i=0; while [ ! -f /tmp/llama-3.1-8b.done ] && [ $i -lt 90 ]; do sleep 1; i=$((i + 1)); done
el
echo "=== greedy md5 (48 tokens), new default $(date +%T)"
LD_LIBRARY_PATH=$N/lib timeout 40 $N/bin/engine --backend cuda run /tmp/llama-3.1-8b "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run.txt
echo "  new rc=$? $(md5sum < /tmp/run.txt | cut -c1-12) $(wc -c < /tmp/run.txt) bytes (old: f86c98e8a1e4 339 bytes)"
echo "=== 8B tg128 (-r 2): old new new old ... until the deadline $(date +%T)"
for side in old new new old old new; do
  left || break
  case $side in old) ab old X_NONE=1 ;; new) ab new X_NONE=1 ;; o2only) ab new TESSERA_CUDA_GEMV_PBAL=0 ;; esac
done
el
echo "total $(( $(date +%s) - T0 )) s"
