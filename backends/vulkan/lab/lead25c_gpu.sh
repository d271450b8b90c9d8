#!/bin/bash
# The lead's final call of the twenty-fifth session (H200): the tree's Vulkan plugin with
# vk25-replay's final form (the miss path keyed after the execute's last submission: its H200
# call ran the first form) against HEAD ab82b47's (bundle25), and the CUDA GEMMs beside cuBLASLt.
#   run(command="bash backends/vulkan/lab/lead25c_gpu.sh", carry=[".gl", ".dev/bundle25.tar.xz",
#       ".dev/lead25/new.tar.xz", ".dev/lead25/cuda_gemm_lab.xz"])
# new.tar.xz = new/: the tree's stripped tessera_backend_vulkan (RUNPATH '$ORIGIN:$ORIGIN/../..')
# and vulkan_backend_test ('$ORIGIN/../lib'); cuda_gemm_lab.xz = HEAD's stripped cuda_gemm_lab.
#   1. cuda_gemm_lab one piece (TESSERA_LAB_TERMS=1, TMA configuration 30 only, no checks): the
#      default dispatch and cuBLASLt on the prefill shapes at M = 2048 / 512
#   2. Vulkan suites on new (unit incl. ReplayedStepsMatchDirectExecutes, conformance, golden)
#   3. greedy md5 old / new / new REPLAY=0 on 0.5B, 1B, 8B
#   4. engine bench -p 16 -n 128 -r 2: 8B old new cuda new old, 1B and 0.5B old new new old (pp16
#      is the final form's miss path), 8B --parallel 8 old / new, 8B L2_WARM=0 pair on new
# No step starts past $DEADLINE s; logs in $OUT.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-260}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
. backends/cuda/lab/lab_common.sh
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle25.tar.xz -C .dev && tar xJf .dev/lead25/new.tar.xz -C .dev/lead25
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
NB=/tmp/nb; rm -rf $NB && cp -r $B $NB && cp .dev/lead25/new/libtessera_backend_vulkan.so $NB/lib/tessera/backends/
cp .dev/lead25/new/vulkan_backend_test $NB/bin/
NEW=$NB/lib/tessera/backends/libtessera_backend_vulkan.so
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
echo "=== gemm lab, one piece, vs cuBLASLt t=$(el)"
xz -dc .dev/lead25/cuda_gemm_lab.xz > $B/bin/cuda_gemm_lab && chmod +x $B/bin/cuda_gemm_lab
find_cublaslt; echo "cublaslt: ${TESSERA_CUBLASLT:-none}"
TESSERA_LAB_TERMS=1 TESSERA_LAB_TMA=30 timeout 90 $B/bin/cuda_gemm_lab --no-check --wgmma-only --wg-from=99 > $OUT/gemm_lab.log 2>&1
echo "gemm lab rc=$?"
grep -E "^gemm " $OUT/gemm_lab.log | sed -E 's/ split_us.*//' | head -30
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$NB/bin/engine devices 2>&1 | grep -E "vulkan:0|cuda:0"
echo "=== Vulkan suites (new) t=$(el)"
TESSERA_VULKAN_PLUGIN=$NEW timeout 90 $NB/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter='-*Coop*' > $OUT/vk_unit.log 2>&1
echo "unit rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]' $OUT/vk_unit.log | tr '\n' ' ')"
TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/vk_conf.log 2>&1
echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_conf.log | tr '\n' ' ')"
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_golden.log | tr '\n' ' ')"
L=$OUT/eb; mkdir -p $L
wait_ckpt() { for i in $(seq 1 90); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
echo "=== md5 t=$(el)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  wait_ckpt $s || { echo "$s: no checkpoint"; continue; }
  line="$s:"
  for side in old new r0; do bd=$NB; pe=X=1; [ $side = old ] && bd=$B; [ $side = r0 ] && pe=TESSERA_VULKAN_REPLAY=0
    env $pe LD_LIBRARY_PATH=$bd/lib timeout 45 $bd/bin/engine run /tmp/$s "t1 t2 t3 t4" --raw -n 32 --temperature 0 --backend vulkan > $L/run_${s}_$side.txt 2> $L/run_${s}_$side.err
    line="$line $side rc=$? $(md5sum < $L/run_${s}_$side.txt | cut -c1-12)"
  done
  echo "$line"
done
NI=0
eb() { local s=$1 side=$2; shift 2; local bd=$NB be=vulkan; NI=$((NI + 1))
  [ $side = old ] && bd=$B; [ $side = cuda ] && be=cuda
  env "$@" LD_LIBRARY_PATH=$bd/lib timeout 60 $bd/bin/engine bench /tmp/$s --backend $be ${EB_ARGS:--p 16 -n 128 -r 2} 2>&1 |
    grep -E "\| (pp|tg)[0-9]|rror" > $L/tg_${s}_${side}_$NI.log
  echo "  $s $side $* $(awk '{printf "%s %s  ", $2, $4}' $L/tg_${s}_${side}_$NI.log)"; }
echo "=== tg128 t=$(el)"
for side in old new cuda new old; do left && eb llama-3.1-8b $side X=1; done
for s in llama-3.2-1b qwen2.5-0.5b; do for side in old new new old; do left && eb $s $side X=1; done; done
echo "=== 8B --parallel 8 t=$(el)"
for side in old new; do left && EB_ARGS="-p 0 -n 64 --parallel 8 -r 1" eb llama-3.1-8b $side X=1; done
echo "=== 8B L2_WARM=0 pair on new t=$(el)"
for k in 0 1 0 1; do left && eb llama-3.1-8b new TESSERA_VULKAN_L2_WARM=$k; done
echo "=== means"
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do for side in old new cuda; do
  ls $L/tg_${s}_${side}_*.log > /dev/null 2>&1 || continue
  echo "$s $side: $(cat $L/tg_${s}_${side}_*.log | awk '$2 ~ /^(tg128|pp16)$/ {s[$2] += $4; n[$2]++} END {for (k in s) printf "%s %.2f (%d)  ", k, s[k] / n[k], n[k]}')"
done; done
echo "total $(el) s"
