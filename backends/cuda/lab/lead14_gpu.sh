#!/bin/bash
# The lead's GPU call of the fourteenth session, from the repo root, carrying
# .dev/cu-dattn14/bundle.tar.gz (this tree's bundle: cu-dec14's graph-key fast path and held
# uploads, cu-dattn14's fast decode attention behind TESSERA_CUDA_ATTN=fast8|fast4), .dev/old14.tar.xz
# (HEAD 035ab10's engine and CUDA / Vulkan / CPU plugins) and .gl (glvnd debs for Vulkan).
# cu-dattn14's dattn14_gpu.sh (attention lab bits + timings, CUDA suites with fast8, conformance
# with fast4, greedy text per side) plus a "head" side (HEAD's CUDA plugin in a copy of the bundle)
# in the interleaved tg128 rounds, and Vulkan vs CUDA 8B tg128 at the end for issue 6's ratio.
# Steps stop starting past $DEADLINE s. Logs in $OUT (backends/cuda/lab/results/lead14/).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-230}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b
make_checkpoints qwen2.5-0.5b llama-3.2-1b
mkdir -p .dev/cu-dattn14 && tar xzf .dev/cu-dattn14/bundle.tar.gz -C .dev/cu-dattn14
B=$PWD/.dev/cu-dattn14/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
rm -rf /tmp/head && cp -r $B /tmp/head && mkdir -p /tmp/o14 && tar xJf .dev/old14.tar.xz -C /tmp/o14 &&
  cp /tmp/o14/libtessera_backend_cuda.so /tmp/head/lib/tessera/backends/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
waitck() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; }
side_env() { case $1 in fast8) echo TESSERA_CUDA_ATTN=fast8 ;; fast4) echo TESSERA_CUDA_ATTN=fast4 ;;
  *) echo X_UNUSED=1 ;; esac; }
ab() { local side=$1 d=$B; shift; [ $side = head ] && d=/tmp/head
  env LD_LIBRARY_PATH=$d/lib $(side_env $side) timeout 100 $d/bin/engine bench --backend "$@" 2>&1 |
    grep -E "\| tg|rror" | sed "s/^/    $side /"; }

echo "=== attention lab (bench_cuda_kernels --attention)"
timeout 90 $B/bin/bench_cuda_kernels --attention > $OUT/lab.log 2>&1
rc=$?; echo "lab rc=$rc"
[ $rc = 124 ] && { tail -5 $OUT/lab.log; echo "lab timed out: no fast runs"; FASTOK=0; }
grep -E "FAILED|summary" $OUT/lab.log | head -20
grep -c "check .* ok" $OUT/lab.log
grep -E "^attention_decode" $OUT/lab.log | sed 's/^/  /'
el
echo "=== CUDA suites (default)"; cuda_suites; cp $OUT/tests.log $OUT/tests_default.log
echo "=== CUDA suites with TESSERA_CUDA_ATTN=fast8"
export TESSERA_CUDA_ATTN=fast8; cuda_suites; unset TESSERA_CUDA_ATTN
el
if left; then echo "=== CUDA conformance with TESSERA_CUDA_ATTN=fast4"
  TESSERA_CUDA_ATTN=fast4 TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_cuda.so timeout 90 \
    $B/bin/op_conformance_test --gtest_brief=1 > $OUT/conf_fast4.log 2>&1
  echo "conf fast4 rc=$?"; grep -hE "^\[  (PASSED|FAILED) " $OUT/conf_fast4.log | head -3; fi
echo "=== greedy text per side (md5 of 48 generated tokens)"
for s in qwen2.5-0.5b llama-3.2-1b; do
  waitck $s
  for side in head base fast8 fast4; do d=$B; [ $side = head ] && d=/tmp/head
    env LD_LIBRARY_PATH=$d/lib $(side_env $side) timeout 60 $d/bin/engine --backend cuda run /tmp/$s "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_${s}_$side.txt
    echo "  $s $side rc=$? $(md5sum < /tmp/run_${s}_$side.txt | cut -c1-12) $(wc -w < /tmp/run_${s}_$side.txt) words"
  done
done
el
for s in qwen2.5-0.5b llama-3.2-1b; do
  left || break
  echo "=== $s tg128 A/B (head base fast8 fast4, 2 rounds)"
  for r in 1 2; do for side in head base fast8 fast4; do ab $side cuda /tmp/$s -p 16 -n 128 -r 3; done; done
  el
done
s=llama-3.1-8b
waitck $s
for r in 1 2; do
  left || break
  echo "=== $s tg128 A/B round $r"
  for side in head base fast8; do ab $side cuda /tmp/$s -p 16 -n 128 -r 2; done
  el
done
if left; then
  for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
  $B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  echo "=== $s vulkan tg128 (this tree's Vulkan plugin = HEAD's code)"; ab base vulkan /tmp/$s -p 16 -n 128 -r 2
fi
echo "total $(( $(date +%s) - T0 )) s"
