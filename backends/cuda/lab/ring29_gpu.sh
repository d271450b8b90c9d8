#!/bin/bash
# cu29-ring, calls 7-8: lab bit checks with every ring kind on (RING=15), --dec17 8B launches
# ring off / on, 8B greedy md5, tg128 per ring mask ("E": TESSERA_CUDA_FUSE_SWIGLU_EPI=1), per-node
# profile. Needs cuda_gemv_lab in the bundle.
# Bundle (lab/NOTES.md cu29-ring, "Re-run"): .dev/r29/slim.tar.xz = bundle27's bundle/ less the
# Vulkan / OpenCL / Level Zero plugins and loaders, vulkan_backend_test and share/tessera/models,
# with this tree's stripped CUDA plugin in lib/tessera/backends/, cuda_gemv_lab in bin/ (lab
# calls) and HEAD's plugin as old/cuda_old.so (A/B calls); the tree plus it must stay under the
# run tool's 64 MiB carry, so the lab and old/ are not both inside.
#   run(command="bash backends/cuda/lab/SCRIPT", carry=[".dev/r29"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
(python3 bench/make_checkpoint.py --shape llama-3.1-8b --out /tmp/l8 > /tmp/ck.log 2>&1; touch /tmp/l8.done) &
tar xJf .dev/r29/slim.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends; LAB=$B/bin/cuda_gemv_lab
echo "=== (1) lab --quick RING=15 t=$(el)"
TESSERA_CUDA_GEMV_RING=15 GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 100 $LAB --quick > $OUT/chk_7.log 2>&1
echo "rc=$? shapes $(grep -c '^checked' $OUT/chk_7.log) same-bits $(grep -c 'same bits' $OUT/chk_7.log) DIFFERENT $(grep -c DIFFERENT $OUT/chk_7.log); $(grep -E '^checks' $OUT/chk_7.log)"
grep -E "DIFFERENT|swiglu_epi.*K4096" $OUT/chk_7.log | head -6
echo "=== (2) lab --dec17 t=$(el)"
for m in 0 15 0 15; do
  TESSERA_CUDA_GEMV_RING=$m GEMV_LAB_TAG=RING=$m GEMV_LAB_DEC17_ONLY=8B-o-res,8B-norm-qkv,8B-norm-gate-up,8B-norm-gate-up-swiglu,8B-down-res timeout 60 $LAB --dec17 2>&1 | grep -E "^dec17|rror"
done
for i in $(seq 1 120); do [ -f /tmp/l8.done ] && break; sleep 1; done
echo "=== (3) md5 t=$(el)"
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
for m in 0 15 "15 E"; do
  E=0; case "$m" in *E) E=1;; esac
  TESSERA_CUDA_FUSE_SWIGLU_EPI=$E TESSERA_CUDA_GEMV_RING=${m% E} timeout 60 $B/bin/engine run /tmp/l8 "$P20" --raw -n 48 --temperature 0 --backend cuda > /tmp/run.txt 2> /tmp/run.err
  echo "RING=$m rc=$? $(md5sum < /tmp/run.txt | cut -c1-12)"
done
echo "=== (4) tg128 t=$(el)"
eb() { E=0; case "$1" in *E) E=1;; esac; echo "  RING=$1 $(TESSERA_CUDA_FUSE_SWIGLU_EPI=$E TESSERA_CUDA_GEMV_RING=${1% E} timeout 60 $B/bin/engine bench /tmp/l8 --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for m in 0 "3" "6 E" 0 "3" "6 E" 1 2 8 "0 E" "7 E"; do eb "$m"; done
echo "=== (5) per-node profile (graphs off) t=$(el)"
for m in 0 3; do
  TESSERA_CUDA_PROFILE=1 TESSERA_CUDA_GEMV_RING=$m timeout 60 $B/bin/engine bench /tmp/l8 --backend cuda -p 16 -n 32 -r 1 > /tmp/prof_$m.log 2>&1
  echo "RING=$m"; grep "cuda profile" /tmp/prof_$m.log | grep -E "decode" | head -14
done
echo "total $(el) s"
