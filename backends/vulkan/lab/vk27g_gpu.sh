#!/bin/bash
# Twenty-seventh session, call 2 (H200): the register-blocked fp32 GEMM tiles (matmul_gemm_t.comp,
# run_ops.cc kGemmTiles, lab knob TESSERA_VULKAN_GEMM_TILE) against matmul_gemm.comp ("off") in
# vulkan_gemm_lab (us a MATMUL, bits vs off, driver statistics), then engine pp512 with a few.
#   run(command="bash backends/vulkan/lab/vk27g_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz", ".dev/vk27g"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-300}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in llama-3.1-8b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
cp $VK /tmp/vk_old.so
xz -dc .dev/vk27g/vk.so.xz > $VK
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V="off;g1;g2;g3;g4;g5;g6;g7;g8;g9;g10;g11;g12"
echo "=== lab 8b M=512, HEAD's plugin t=$(el)"
TESSERA_VULKAN_PLUGIN=/tmp/vk_old.so timeout 60 .dev/vk27g/vulkan_gemm_lab --shapes 8b --m 512 --reps 5 --stats --variants "off" 2>&1 | tee $OUT/lab_8b_head.txt | grep -v "^plugin"
echo "=== lab 8b M=512 t=$(el)"
TESSERA_VULKAN_PLUGIN=$VK timeout 150 .dev/vk27g/vulkan_gemm_lab --shapes 8b --m 512 --reps 5 --stats --variants "$V" > $OUT/lab_8b.txt 2>&1
echo "rc=$?"; cat $OUT/lab_8b.txt
echo "=== lab 05b,1b M=512 t=$(el)"
TESSERA_VULKAN_PLUGIN=$VK timeout 100 .dev/vk27g/vulkan_gemm_lab --shapes 1b,05b --m 512 --reps 5 --variants "$V" > $OUT/lab_small.txt 2>&1
echo "rc=$?"; grep -v "^  pipeline" $OUT/lab_small.txt
for i in $(seq 1 150); do [ -f /tmp/llama-3.1-8b.done ] && break; sleep 1; done
echo "=== engine 8B pp512 t=$(el)"
for v in 0 ${ENGINE_TILES:-3 5 2 9} 0; do left || break
  echo "  GEMM_TILE=$v $(TESSERA_VULKAN_GEMM_TILE=$v timeout 60 $B/bin/engine bench /tmp/llama-3.1-8b --backend vulkan -p 512 -n 0 -r 2 2>&1 | grep -E '\| pp[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"
done
cp $VK /tmp/vk_new.so && cp /tmp/vk_old.so $VK
left && echo "  HEAD's plugin $(timeout 60 $B/bin/engine bench /tmp/llama-3.1-8b --backend vulkan -p 512 -n 0 -r 2 2>&1 | grep -E '\| pp[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"
cp /tmp/vk_new.so $VK
echo "total $(el) s"
