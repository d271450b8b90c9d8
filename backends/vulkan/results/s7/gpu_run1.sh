#!/bin/bash
# vk-coop GPU call 1: the cooperative-matrix GEMM (TESSERA_VULKAN_COOPMAT=1) on the H100:
# device description, op conformance + golden + unit test with it on, then engine bench pp512
# with it off / on next to CUDA (the lead's 19:09 bundle) on Qwen2.5-0.5B / Llama-3.2-1B /
# Llama-3.1-8B shapes.
cd "$(dirname "$0")/../../../.."
R=$PWD
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
mkdir -p /tmp/b && tar xzf .dev/vkcoop-bundles.tar.gz -C /tmp/b
B=/tmp/b/bundle-vkcoop C=/tmp/b/bundle
export LD_LIBRARY_PATH=$B/lib
L=/tmp/logs1; mkdir -p $L
if ! $B/bin/engine devices 2>&1 | grep -q "vulkan:0"; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; echo "using VK_DRIVER_FILES"
fi
(for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s 2>&1 | tail -1; done) > $L/ckpt.log 2>&1 &
P=$B/lib/tessera/backends
export TESSERA_VULKAN_COOPMAT=1
$B/bin/engine devices -v 2>&1 | grep -i "vulkan" | head -3
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $L/conf.log 2>&1; echo conf coop rc=$?
grep -E "PASSED|FAILED|tolerance|rror" $L/conf.log | head -12
TESSERA_MODEL_FIXTURES=$R/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $L/golden.log 2>&1; echo golden coop rc=$?
grep -E "PASSED|FAILED|Failure" $L/golden.log | head -8
TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 > $L/unit.log 2>&1; echo unit coop rc=$?
grep -E "^\[ +(FAILED|PASSED) " $L/unit.log | head -8
wait; cat $L/ckpt.log
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  for c in 0 1; do
    TESSERA_VULKAN_COOPMAT=$c timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 512 -n 0 -r 2 > $L/bench_${s}_coop$c.log 2>&1
    echo "$s vulkan coop=$c: $(grep -E 'pp512|rror' $L/bench_${s}_coop$c.log | head -2 | tr '\n' ' ')"
  done
  LD_LIBRARY_PATH=$C/lib timeout 60 $C/bin/engine bench /tmp/$s --backend cuda -p 512 -n 0 -r 2 > $L/bench_${s}_cuda.log 2>&1
  echo "$s cuda: $(grep -E 'pp512|rror' $L/bench_${s}_cuda.log | head -2 | tr '\n' ' ')"
done
TESSERA_VULKAN_PROFILE=1 timeout 40 $B/bin/engine bench /tmp/llama-3.1-8b --backend vulkan -p 512 -n 0 -r 1 > $L/prof_l8b_coop1.log 2>&1
grep -E "coop|gemm|attention|total|wall" $L/prof_l8b_coop1.log | head -12
tar czf $OUT/logs1.tgz -C /tmp logs1
