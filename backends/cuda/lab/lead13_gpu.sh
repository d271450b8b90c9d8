#!/bin/bash
# The lead's GPU call of the thirteenth session, from the repo root, carrying .dev/bundle.tar.gz
# (this tree's bundle + test binaries + cuda_gemm_lab), .dev/old13.tar.xz (HEAD e302fcc's engine
# and CUDA / Vulkan / CPU plugins) and .gl (glvnd debs for Vulkan). What changed on the GPU side
# this session: the CUDA one-piece (matmul_precision=bf16) GEMM dispatch (cu-gemm13: the 128 x 64
# tile where the 128 x 128 grid fills the SMs badly; TESSERA_CUDA_GEMM_NARROW=0 = the old choice)
# and the opt-in Vulkan cooperative-matrix GEMV (vk-coop13; defaults unchanged). So: the default
# dispatch's bit checks with NARROW 1 / 0, CUDA and Vulkan suites, engine pp512 in bf16 mode new /
# NARROW=0 / HEAD's plugins ("oldp") / new, and Vulkan vs CUDA tg128 on 8B for the ratio.
# Steps stop starting past $DEADLINE s.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-250}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
rm -f /tmp/*.done; tar xzf .dev/bundle.tar.gz -C .dev
B=.dev/bundle; export LD_LIBRARY_PATH=$PWD/$B/lib; P=$PWD/$B/lib/tessera/backends
. backends/cuda/lab/lab_common.sh
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
(for s in llama-3.2-1b qwen2.5-0.5b llama-3.1-8b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
rm -rf /tmp/oldp && cp -r $B /tmp/oldp && tar xJf .dev/old13.tar.xz -C /tmp/oldp/lib/tessera/backends/ && mv /tmp/oldp/lib/tessera/backends/engine /tmp/oldp/engine.old
# eb SIDE ARGS...: engine bench with this bundle ("new") or HEAD's plugins ("oldp"); $EBOPT before
# the subcommand (e.g. --backend-opt cuda.matmul_precision=bf16).
eb() { local d=$PWD/$B; [ $1 = oldp ] && d=/tmp/oldp; shift
  LD_LIBRARY_PATH=$d/lib timeout 100 $d/bin/engine ${EBOPT:-} bench "$@" 2>&1 | grep -E "\| (pp|tg)[0-9]|rror" | sed 's/^/    /'; }
echo "=== CUDA GEMM default dispatch: bit checks (GEMV vs GEMM), TESSERA_CUDA_GEMM_NARROW=1 / 0"
find_cublaslt
for x in 1 0; do
  TESSERA_CUDA_GEMM_NARROW=$x timeout 60 $B/bin/cuda_gemm_lab --wgmma-only --wg-from=99 --default-only > $OUT/def_narrow$x.log 2>&1
  echo "NARROW=$x rc=$? checks ok: $(grep -c ' ok$' $OUT/def_narrow$x.log)"; grep -E "FAILED|summary" $OUT/def_narrow$x.log | head -4
done
echo "=== CUDA suites (conformance, golden, scheduler)"; cuda_suites
echo "=== Vulkan suites"
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
TESSERA_CONFORMANCE_PLUGINS=$P/libtessera_backend_vulkan.so timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/vk_conf.log 2>&1; echo "vulkan conformance rc=$?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED TEST" $OUT/vk_conf.log | head -6
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$P/libtessera_backend_vulkan.so:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1; echo "vulkan golden rc=$?"
grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $OUT/vk_golden.log | head -4
echo "checks $(( $(date +%s) - T0 )) s"
for s in llama-3.2-1b qwen2.5-0.5b llama-3.1-8b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  export EBOPT="--backend-opt cuda.matmul_precision=bf16"
  for v in new narrow0 oldp new; do
    echo "=== $s cuda bf16 pp512 $v"
    if [ $v = narrow0 ]; then TESSERA_CUDA_GEMM_NARROW=0 eb new --backend cuda /tmp/$s -p 512 -n 0 -r 3; else eb $v --backend cuda /tmp/$s -p 512 -n 0 -r 3; fi
  done
  unset EBOPT
  echo "  t=$(( $(date +%s) - T0 )) s"
done
s=llama-3.1-8b
for r in 1 2; do
  left || break
  echo "=== $s vulkan tg128 (round $r)"; eb new --backend vulkan /tmp/$s -p 16 -n 128 -r 2
  echo "=== $s cuda tg128 (round $r)"; eb new --backend cuda /tmp/$s -p 16 -n 128 -r 2
done
echo "total $(( $(date +%s) - T0 )) s"
