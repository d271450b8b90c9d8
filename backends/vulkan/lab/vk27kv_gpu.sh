#!/bin/bash
# Twenty-seventh session, call 5 (H200): the k RoPE + KV_WRITEs folded into decode attention
# (vk27-kv: attention.comp KVNEW, plugin.cc ExecuteRopeKvAttention) and the L2 warm-up off on
# cards of >= 100 GiB (the tree's plugin, "new") against HEAD's plugin ("old", bundle27) and new
# with TESSERA_VULKAN_FUSE_KV_ATTN=0 ("off"): suites, the scheduler's batch-invariance suite,
# greedy md5s, tg128 interleaved on the three shapes, CUDA 8B for the ratio.
#   run(command="bash backends/vulkan/lab/vk27kv_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz", ".dev/vk27kv"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
cp $VK /tmp/vk_old.so; xz -dc .dev/vk27kv/vk.so.xz > /tmp/vk_new.so; cp /tmp/vk_new.so $VK
xz -dc .dev/vk27kv/vbt.xz > /tmp/vbt; chmod +x /tmp/vbt
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
echo "=== suites (new) t=$(el)"
TESSERA_VULKAN_PLUGIN=$VK timeout 100 /tmp/vbt --gtest_brief=1 --gtest_filter='-*Coop*' > $OUT/vk_unit.log 2>&1
echo "unit rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]|FAILED  \]' $OUT/vk_unit.log | tr '\n' ' ')"
TESSERA_CONFORMANCE_PLUGINS=$VK timeout 90 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/vk_conf.log 2>&1
echo "conformance rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_conf.log | tr '\n' ' ')"
TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$VK:$P/libtessera_backend_cpu.so \
  timeout 90 $B/bin/text_golden_test --gtest_brief=1 > $OUT/vk_golden.log 2>&1
echo "golden rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/vk_golden.log | tr '\n' ' ')"
TESSERA_TEST_PLUGINS=$VK:$P/libtessera_backend_cpu.so TESSERA_TEST_BACKEND=vulkan TESSERA_DEFAULT_MODEL=$PWD/models/default \
  timeout 120 $B/bin/server_scheduler_test --gtest_brief=1 > $OUT/sched.log 2>&1
echo "scheduler rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/sched.log | tr '\n' ' ')"
L=$OUT/eb; mkdir -p $L
wait_ckpt() { for i in $(seq 1 150); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== md5 (20-token prompt; HEAD: 1B 3304538b4d83, 8B fd5aaf203728) t=$(el)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for side in new off old; do
    cp /tmp/vk_$([ $side = old ] && echo old || echo new).so $VK
    kn=1; [ $side = off ] && kn=0
    TESSERA_VULKAN_FUSE_KV_ATTN=$kn timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 32 --temperature 0 --backend vulkan > $L/run.txt 2> $L/run.err
    line="$line $side rc=$? $(md5sum < $L/run.txt | cut -c1-12)"
  done; echo "$line t=$(el)"
done
eb() { local s=$1 side=$2; shift 2
  cp /tmp/vk_$([ $side = old ] && echo old || echo new).so $VK
  local kn=1; [ $side = off ] && kn=0
  echo "  $s $side $* $(env TESSERA_VULKAN_FUSE_KV_ATTN=$kn "$@" timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
echo "=== tg128 t=$(el)"
for side in old new off new old new off old; do left && eb llama-3.1-8b $side D=1; done
left && echo "  CUDA $(timeout 60 $B/bin/engine bench /tmp/llama-3.1-8b --backend cuda -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"
for s in llama-3.2-1b qwen2.5-0.5b; do for side in old new off new old; do left && eb $s $side D=1; done; done
cp /tmp/vk_new.so $VK
echo "total $(el) s"
