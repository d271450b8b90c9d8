#!/bin/bash
# cu29-ring: the ring at K = 2048 (mask 16: the 1B's o, q/k/v, gate/up + SWIGLU): bits, lab, 1B tg128.
# Bundle (lab/NOTES.md cu29-ring, "Re-run"): .dev/r29/slim.tar.xz = bundle27's bundle/ less the
# Vulkan / OpenCL / Level Zero plugins and loaders, vulkan_backend_test and share/tessera/models,
# with this tree's stripped CUDA plugin in lib/tessera/backends/, cuda_gemv_lab in bin/ (lab
# calls) and HEAD's plugin as old/cuda_old.so (A/B calls); the tree plus it must stay under the
# run tool's 64 MiB carry, so the lab and old/ are not both inside.
#   run(command="bash backends/cuda/lab/SCRIPT", carry=[".dev/r29"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
(python3 bench/make_checkpoint.py --shape llama-3.2-1b --out /tmp/l1 > /tmp/ck.log 2>&1; touch /tmp/l1.done) &
tar xJf .dev/r29/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
echo "=== lab --quick RING=31 t=$(el)"
TESSERA_CUDA_GEMV_RING=31 GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk.log 2>&1
echo "rc=$? shapes $(grep -c '^checked' $OUT/chk.log) same-bits $(grep -c 'same bits' $OUT/chk.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk.log); $(grep -E '^checks' $OUT/chk.log)"
echo "=== lab --dec17 1B t=$(el)"
for m in 7 23 7 23; do
  TESSERA_CUDA_GEMV_RING=$m GEMV_LAB_TAG=RING=$m GEMV_LAB_DEC17_ONLY=1B-o-res,1B-norm-qkv,1B-norm-gate-up,1B-down-res timeout 60 $LAB --dec17 2>&1 | grep -E "^dec17|rror"
done
for i in $(seq 1 120); do [ -f /tmp/l1.done ] && break; sleep 1; done
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
for m in 7 23; do
  TESSERA_CUDA_GEMV_RING=$m timeout 60 $B/bin/engine run /tmp/l1 "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
  echo "md5 RING=$m rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
done
eb() { E=-1; case "$1" in *E0) E=0;; esac; echo "  RING=$1 $(TESSERA_CUDA_FUSE_SWIGLU_EPI=$E TESSERA_CUDA_GEMV_RING=${1% E0} timeout 60 $B/bin/engine bench /tmp/l1 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for m in 7 23 23 7 7 23 17 18 "22 E0" 20; do eb "$m"; done
echo "total $(el) s"
