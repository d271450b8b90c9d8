#!/bin/bash
# vk-coop GPU call 2: the shared-memory-staged cooperative-matrix GEMM (32-value stages, f32 add of
# each stage's sum) with 128- and 64-row tiles. Unit test + op conformance + golden with
# TESSERA_VULKAN_COOPMAT=1 (profiled: shows whether the coop GEMM ran), then engine bench pp512
# coop off / on (auto tile, 128, 64) next to CUDA (the lead's 19:09 bundle), three shapes.
cd "$(dirname "$0")/../../../.."
R=$PWD
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
mkdir -p /tmp/b && tar xzf .dev/vkcoop-bundles.tar.gz -C /tmp/b
B=/tmp/b/bundle-vkcoop C=/tmp/b/bundle
export LD_LIBRARY_PATH=$B/lib
L=/tmp/logs${CALL:-2}; mkdir -p $L  # CALL=3: call 3 (gpu_run3.sh)
if ! $B/bin/engine devices 2>&1 | grep -q "vulkan:0"; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "using VK_DRIVER_FILES"
fi
(for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s 2>&1 | tail -1; done) > $L/ckpt.log 2>&1 &
P=$B/lib/tessera/backends
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 > $L/unit.log 2>&1; echo unit rc=$?
grep -E "^\[ +(FAILED|PASSED) |Failure|evaluates|tile rows|M [0-9]" $L/unit.log | head -12
export TESSERA_VULKAN_COOPMAT=1 TESSERA_VULKAN_PROFILE=1
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $L/conf.log 2>&1; echo conf coop rc=$?
grep -E "PASSED|FAILED|tolerance" $L/conf.log | head -8; echo "conf: matmul_coop dispatches in profiles: $(grep -c 'matmul_coop' $L/conf.log)"
TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $L/golden.log 2>&1; echo golden coop rc=$?
grep -E "PASSED|FAILED|Failure" $L/golden.log | head -8; echo "golden: matmul_coop lines in profiles: $(grep -c 'matmul_coop' $L/golden.log)"
unset TESSERA_VULKAN_PROFILE TESSERA_VULKAN_COOPMAT
wait; cat $L/ckpt.log
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  for v in "0 auto" "1 auto" "1 128" "1 64"; do
    set -- $v; t=$2; [ $t = auto ] && t=0
    TESSERA_VULKAN_COOPMAT=$1 TESSERA_VULKAN_COOPMAT_TILE=$t timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 512 -n 0 -r 2 > $L/bench_${s}_coop$1_$2.log 2>&1
    echo "$s vulkan coop=$1 tile=$2: $(grep -E 'pp512|rror' $L/bench_${s}_coop$1_$2.log | head -2 | tr '\n' ' ')"
  done
  LD_LIBRARY_PATH=$C/lib timeout 60 $C/bin/engine bench /tmp/$s --backend cuda -p 512 -n 0 -r 2 > $L/bench_${s}_cuda.log 2>&1
  echo "$s cuda: $(grep -E 'pp512|rror' $L/bench_${s}_cuda.log | head -2 | tr '\n' ' ')"
done
for s in llama-3.1-8b qwen2.5-0.5b; do
  TESSERA_VULKAN_COOPMAT=1 TESSERA_VULKAN_PROFILE=1 timeout 40 $B/bin/engine bench /tmp/$s --backend vulkan -p 512 -n 0 -r 1 > $L/prof_${s}_coop1.log 2>&1
  grep -E "coop|gemm|attention|rows.comp|elementwise|sum of" $L/prof_${s}_coop1.log | head -12
done
if [ "${TEXT:-0}" = 1 ]; then  # call 3: greedy text, coop off / on / CUDA, 1B shape
  PROMPT="The history of the printing press begins in the fifteenth century, when movable metal type, oil based inks and a screw press came together in the workshops of the Rhine valley, and within fifty years presses were at work in more than two hundred cities across Europe, printing bibles, grammars, calendars and pamphlets"
  for v in "vulkan 0" "vulkan 1" "cuda 0"; do
    set -- $v
    if [ $1 = cuda ]; then E="env LD_LIBRARY_PATH=$C/lib $C/bin/engine"; else E=$B/bin/engine; fi
    TESSERA_VULKAN_COOPMAT=$2 timeout 40 $E run /tmp/llama-3.2-1b "$PROMPT" --raw -n 12 --temperature 0 --backend $1 > $L/run_$1_$2.txt 2> $L/run_$1_$2.err
    echo "run $1 coop=$2 rc=$? md5=$(md5sum < $L/run_$1_$2.txt | cut -c1-12): $(head -c 160 $L/run_$1_$2.txt | tr '\n' ' ')"
  done
fi
tar czf $OUT/logs${CALL:-2}.tgz -C /tmp logs${CALL:-2}
