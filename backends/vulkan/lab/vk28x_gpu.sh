#!/bin/bash
# Twenty-eighth session, call 5 (H200): the strided prototype with the normed row staged in
# shared memory (matmul.comp sm_xn; TESSERA_VULKAN_STRIDED=1 / 3) at 3 and 4 persistent
# workgroups an SM (TESSERA_VULKAN_PERSIST=396 / 528): registers, lab, engine 8B tg128.
# Call 7 (V=7): the strided modules with 2 rows a subgroup (DROWS 2, no sm_xn) at 3-6
# persistent workgroups an SM, the skewed default at 2 rows as the control.
# Call 8 (V=8, the call-5 plugin): the 8B o with K split in 2 / 4 pieces inside the workgroup
# (TESSERA_VULKAN_DECODE_KPIECES) on the 128-register strided module and on the skewed one.
#   run(command="bash backends/vulkan/lab/vk28x_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz", ".dev/vk28"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-200}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
s=llama-3.1-8b
(python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
xz -dc .dev/vk28/vk.so.xz > $VK
xz -dc .dev/vk28/gemvlab.xz > $B/bin/vulkan_gemv_lab; chmod +x $B/bin/vulkan_gemv_lab
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export TESSERA_VULKAN_PLUGIN=$VK
n=0
lab() { n=$((n+1)); echo "--- $* t=$(el)"; env "$@" timeout 100 $B/bin/vulkan_gemv_lab --shapes 8b --reps 20 --glu --rope --copy-gbs 4200 > $OUT/lab_$n.txt 2>&1; grep -E "^8b |PASSED|FAIL" $OUT/lab_$n.txt | grep -v "pipeline stats" | sed 's/ dispatches//;s/us\/dispatch/us/' | cut -c1-150; grep -o "pipeline stats matmul.comp [a-z+]* (bf16) \[CS\]: Register Count=[0-9]*" $OUT/lab_$n.txt | sort -u; }
if [ "${V:-5}" = 8 ]; then
lab D=0
lab TESSERA_VULKAN_STRIDED=1 TESSERA_VULKAN_PIPELINE_STATS=1
lab TESSERA_VULKAN_STRIDED=1 TESSERA_VULKAN_DECODE_KPIECES=2
lab TESSERA_VULKAN_STRIDED=1 TESSERA_VULKAN_DECODE_KPIECES=4
lab TESSERA_VULKAN_DECODE_KPIECES=2
lab TESSERA_VULKAN_DECODE_KPIECES=4
lab D=0
pkill -f make_checkpoint.py
elif [ "${V:-5}" = 7 ]; then
R="TESSERA_VULKAN_DECODE_ROWS=2 TESSERA_VULKAN_DECODE_ROWS_LONGK=4"
lab D=0
lab TESSERA_VULKAN_STRIDED=1 $R TESSERA_VULKAN_PIPELINE_STATS=1
lab TESSERA_VULKAN_STRIDED=1 $R TESSERA_VULKAN_PERSIST=528
lab TESSERA_VULKAN_STRIDED=1 $R TESSERA_VULKAN_PERSIST=660
lab TESSERA_VULKAN_STRIDED=1 $R TESSERA_VULKAN_PERSIST=792
lab $R
for i in $(seq 1 150); do [ -f /tmp/$s.done ] && break; sleep 1; done
eb() { echo "  $* $(env "$@" timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
echo "=== 8B tg128 t=$(el)"
for v in D=0 "TESSERA_VULKAN_STRIDED=1 $R TESSERA_VULKAN_PERSIST=528" "TESSERA_VULKAN_STRIDED=1 $R TESSERA_VULKAN_PERSIST=660" D=0 "TESSERA_VULKAN_STRIDED=1 $R"; do
  left && eb $v; done
else
lab D=0
lab TESSERA_VULKAN_STRIDED=1 TESSERA_VULKAN_PIPELINE_STATS=1
lab TESSERA_VULKAN_STRIDED=3 TESSERA_VULKAN_PIPELINE_STATS=1
lab TESSERA_VULKAN_STRIDED=1 TESSERA_VULKAN_PERSIST=528
lab TESSERA_VULKAN_STRIDED=3 TESSERA_VULKAN_PERSIST=528
lab TESSERA_VULKAN_STRIDED=1 TESSERA_VULKAN_PERSIST=660
for i in $(seq 1 150); do [ -f /tmp/$s.done ] && break; sleep 1; done
eb() { echo "  $* $(env "$@" timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
echo "=== 8B tg128 t=$(el)"
for v in D=0 TESSERA_VULKAN_STRIDED=1 "TESSERA_VULKAN_STRIDED=1 TESSERA_VULKAN_PERSIST=528" "TESSERA_VULKAN_STRIDED=3 TESSERA_VULKAN_PERSIST=528" D=0 "TESSERA_VULKAN_STRIDED=1 TESSERA_VULKAN_PERSIST=528"; do
  left && eb $v; done
fi
echo "total $(el) s"
