#!/bin/bash
# Twenty-sixth session, the lead's call (H200): matmul.comp's MultiRows (MATMULs of 2..32 x rows:
# batched decode, short prompts) against MatmulRow (TESSERA_VULKAN_MULTI=0, the tree before), one
# bundle of this tree (.dev/bundle26.tar.xz, /tmp/mkbundle.sh bundle26).
#   run(command="bash backends/vulkan/lab/multi26_gpu.sh", carry=[".gl", ".dev/bundle26.tar.xz"])
#   1. Vulkan suites (unit incl. MatmulRowsDoNotDependOnTheBatch's MULTI variants, conformance,
#      golden)
#   2. greedy md5 MULTI=1 / MULTI=0 on 0.5B, 1B, 8B with a 4- and a 20-token prompt (prefill
#      M = 4 / 20 takes MultiRows)
#   3. engine bench: pp16 and tg32xN (--parallel N = 8 / 16 / 32) old (MULTI=0) vs new, CUDA
#      beside them
# No step starts past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-300}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle26.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep -E "vulkan:0|cuda:0"
echo "=== Vulkan suites t=$(el)"
TESSERA_VULKAN_PLUGIN=$VK timeout 100 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter='-*Coop*' > $OUT/vk_unit.log 2>&1
echo "unit rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]' $OUT/vk_unit.log | tr '\n' ' ')"
TESSERA_CONFORMANCE_PLUGINS=$VK timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/vk_conf.log 2>&1
echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_conf.log | tr '\n' ' ')"
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$VK:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_golden.log | tr '\n' ' ')"
L=$OUT/eb; mkdir -p $L
wait_ckpt() { for i in $(seq 1 120); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== md5 t=$(el)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  wait_ckpt $s || { echo "$s: no checkpoint"; continue; }
  line="$s:"
  for pr in 4 20; do prompt="t1 t2 t3 t4"; [ $pr = 20 ] && prompt="$P20"
    for m in 1 0; do
      TESSERA_VULKAN_MULTI=$m timeout 45 $B/bin/engine run /tmp/$s "$prompt" --raw -n 32 --temperature 0 --backend vulkan > $L/run_${s}_p${pr}_m$m.txt 2> $L/run_${s}_p${pr}_m$m.err
      line="$line p$pr MULTI=$m rc=$? $(md5sum < $L/run_${s}_p${pr}_m$m.txt | cut -c1-12)"
    done
  done
  timeout 45 $B/bin/engine run /tmp/$s "$P20" --raw -n 32 --temperature 0 --backend cuda > $L/run_${s}_p20_cuda.txt 2>&1
  echo "$line cuda-p20 $(md5sum < $L/run_${s}_p20_cuda.txt | cut -c1-12)"
done
NI=0
eb() { local s=$1 side=$2 par=$3 R="-r $4"; shift 4; local be=vulkan m=1; NI=$((NI + 1))
  [ $side = old ] && m=0; [ $side = cuda ] && be=cuda
  env TESSERA_VULKAN_MULTI=$m "$@" timeout 90 $B/bin/engine bench /tmp/$s --backend $be -p 16 -n 32 --parallel $par $R 2>&1 |
    grep -E "\| (pp|tg)[0-9]|rror" > $L/b_${s}_${side}_x${par}_$NI.log
  echo "  $s $side x$par $R $* $(awk '{printf "%s %s  ", $2, $4}' $L/b_${s}_${side}_x${par}_$NI.log)"; }
echo "=== bench t=$(el)"
for side in old new new old; do left && eb llama-3.1-8b $side 8 2; done
[ -n "${CUDA_TOO:-}" ] && left && eb llama-3.1-8b cuda 8 2
for rows in 4 2 1; do left && eb llama-3.1-8b new 8 1 TESSERA_VULKAN_MULTI_ROWS=$rows; done
for par in 16 32; do for side in old new; do left && eb llama-3.1-8b $side $par 1; done; done
[ -n "${CUDA_TOO:-}" ] && left && eb llama-3.1-8b cuda 32 1
for s in llama-3.2-1b qwen2.5-0.5b; do
  for side in old new new old; do left && eb $s $side 8 2; done
  for side in old new; do left && eb $s $side 32 1; done
  [ -n "${CUDA_TOO:-}" ] && left && eb $s cuda 8 2
done
echo "=== 8B x8 per-shader profile (MULTI=1) t=$(el)"
left && TESSERA_VULKAN_PIPELINE_STATS=1 TESSERA_VULKAN_PROFILE=1 timeout 60 $B/bin/engine bench /tmp/llama-3.1-8b --backend vulkan -p 16 -n 8 --parallel 8 -r 1 > $OUT/prof_x8.log 2>&1
grep -E "calls|profile:|multi" $OUT/prof_x8.log | head -24
echo "total $(el) s"
