#!/bin/bash
# Twenty-seventh session, call 8 (H200): the persistent paired norm-fused groups (q/k/v, gate/up)
# as 4 virtual workgroups in one 512-invocation workgroup (decode_skew_pair_v4_bf16, lab knob
# TESSERA_VULKAN_VWG=4; the driver must then fit 128 registers) against the default module:
# driver statistics, bit checks, tg128 interleaved.
#   run(command="bash backends/vulkan/lab/vk27v_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz", ".dev/vk27v"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-200}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in llama-3.1-8b llama-3.2-1b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
xz -dc .dev/vk27v/vk.so.xz > $VK; xz -dc .dev/vk27v/vbt.xz > /tmp/vbt; chmod +x /tmp/vbt
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
for v in 0 4; do
  TESSERA_VULKAN_VWG=$v TESSERA_VULKAN_PLUGIN=$VK timeout 60 /tmp/vbt --gtest_brief=1 --gtest_filter='*Fused*:*Epilogue*:*Norm*:*Replayed*:*Grouped*' > $OUT/unit_vwg$v.log 2>&1
  echo "unit VWG=$v rc=$? $(grep -E '^\[  (PASSED|FAILED) |SKIPPED \]|FAILED  \]' $OUT/unit_vwg$v.log | tr '\n' ' ') t=$(el)"
done
wait_ckpt() { for i in $(seq 1 150); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
for s in llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for v in 0 4; do
    TESSERA_VULKAN_VWG=$v TESSERA_VULKAN_PIPELINE_STATS=1 TESSERA_LOG_LEVEL=debug timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 32 --temperature 0 --backend vulkan > $OUT/run.txt 2> $OUT/run_$v.err
    line="$line VWG=$v rc=$? $(md5sum < $OUT/run.txt | cut -c1-12)"
  done; echo "$line t=$(el)"
  grep -h "pipeline stats matmul.comp skew+norm+pair" $OUT/run_0.err $OUT/run_4.err | sed 's/.*pipeline stats/  stats/' | sort -u
done
eb() { local s=$1; shift; echo "  $s $* $(env "$@" timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
for v in 0 4 4 0 4 0; do left && eb llama-3.1-8b TESSERA_VULKAN_VWG=$v; done
left && eb llama-3.1-8b TESSERA_VULKAN_VWG=4 TESSERA_VULKAN_VWG_GROUPS=264
for v in 0 4 4 0; do left && eb llama-3.2-1b TESSERA_VULKAN_VWG=$v; done
echo "total $(el) s"
