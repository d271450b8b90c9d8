#!/bin/bash
# cu23-b8's first GPU call (twenty-third session, issue 5, the first H200 session): where the 8B's
# batch-1 decode GEMVs lose on the H200. HEAD d3227ed's bundle (.dev/bundle23.tar.xz) as is, no new
# build: (1) `cuda_gemv_lab --dec16` (plain reads / the GEMV load patterns at the 8B weights' bytes,
# the 8B o / down lab variants incl. the TMA ring, the prologue launches), (2) `--dec17` 8B lines
# under the existing launch knobs, (3) engine 8B tg128 + TESSERA_CUDA_LAB_SKIP runs (-r 1, exec
# profile; cu-small19's method). Run from the repo root carrying .dev/bundle23.tar.xz and
# .dev/cu23-b8/c1: `DEADLINE=85 OUT=$OUT bash .dev/cu23-b8/c1/b8_23a_gpu.sh`. Logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-85}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
python3 -c "import torch; p=torch.cuda.get_device_properties(0); print(p); print({k: getattr(p, k) for k in dir(p) if 'mem' in k.lower() or 'l2' in k.lower() or 'bus' in k.lower() or 'clock' in k.lower()})" 2>&1 | tail -2
rm -rf /tmp/bundle && tar xJf .dev/bundle23.tar.xz -C /tmp
B=/tmp/bundle; LAB=$B/bin/cuda_gemv_lab; export LD_LIBRARY_PATH=$B/lib
echo "=== (1) lab --dec16 $(date +%T)"
timeout 40 $LAB --dec16 > $OUT/lab_dec16.log 2>&1; echo "rc=$?"
grep -E "^(read|engine_gemv|prologue|device|copy)" $OUT/lab_dec16.log | sed -E 's/ (N|K)=[0-9]+//g; s/GB\/s=//' | head -90
el
echo "=== (2) lab --dec17 8B lines per knob $(date +%T)"
L8=8B-o-res,8B-norm-qkv,8B-norm-gate-up,8B-down-res,8B-norm-head
for envs in X_NONE=1 TESSERA_CUDA_GEMV_O2=3 TESSERA_CUDA_GEMV_PBAL=1 TESSERA_CUDA_GEMV_PREF=0 \
    TESSERA_CUDA_GEMV_PREF=11 "TESSERA_CUDA_GEMV_PIPE=8 TESSERA_CUDA_GEMV_TMA_CFG=0x44" \
    "TESSERA_CUDA_GEMV_PIPE=24 TESSERA_CUDA_GEMV_TMA_CFG=0x48" TESSERA_CUDA_GEMV_PIPE=0 X_NONE=2; do
  left || break
  env $envs GEMV_LAB_TAG="${envs// /,}" GEMV_LAB_DEC17_ONLY=$L8 timeout 20 $LAB --dec17 2>&1 |
    grep -E "^dec17" | sed 's/TESSERA_CUDA_GEMV_//g' | tee -a $OUT/lab_dec17.log
done
el
echo "=== (3) engine 8B tg128 + skip runs (-r 1, exec profile) $(date +%T)"
i=0; while [ ! -f /tmp/llama-3.1-8b.done ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done; el
skipbench() {  # skipbench LABEL ENV...
  local lab=$1; shift
  local o; o=$(env TESSERA_CUDA_PROFILE=exec "$@" timeout 40 $B/bin/engine bench \
    --backend cuda /tmp/llama-3.1-8b -p 16 -n 128 -r 1 2>&1)
  echo "##### skip=[$lab] $*" >> $OUT/skip.log; echo "$o" | grep -E "cuda profile|\| tg|rror" >> $OUT/skip.log
  printf "  %-16s tg %s  gpu: %s\n" "[$lab]" \
    "$(echo "$o" | grep -E '\| tg128' | awk -F'|' '{print $3}' | awk '{print $1}')" \
    "$(echo "$o" | grep -E 'execute of [0-9]+ nodes \(gpu\)' | awk '{print $6"x "$8"us"}' | tr '\n' ' ')"
}
SK=("MATMUL x2" "K=14336" "MATMUL x3" "N=4096 K=4096" "PAGED_ATTENTION")
skipbench none X_NONE=1
for k in "${SK[@]}"; do left || break; skipbench "$k" "TESSERA_CUDA_LAB_SKIP=$k"; done
skipbench none X_NONE=1
el
echo "total $(( $(date +%s) - T0 )) s"
