#!/bin/bash
# Twenty-eighth session, calls 1-2 (H200): the strided chunk order's decode GEMV (matmul.comp
# STRIDED, a prototype: TESSERA_VULKAN_STRIDED=1 / 2 = ST_MODE 0 / 1) against the skewed
# modules, in vulkan_gemv_lab (8B / 1B / 0.5B shapes, checked against the double reference) and
# in the engine (8B tg128 interleaved; the strided order is not the GEMM's, so the md5s differ).
#   run(command="bash backends/vulkan/lab/vk28_gpu.sh",
#       carry=[".gl", ".dev/bundle27.tar.xz", ".dev/vk28"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-330}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
s=llama-3.1-8b
python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1 &
CK=$!
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
xz -dc .dev/vk28/vk.so.xz > $P/libtessera_backend_vulkan.so
xz -dc .dev/vk28/gemvlab.xz > $B/bin/vulkan_gemv_lab; chmod +x $B/bin/vulkan_gemv_lab
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
lab() { local sh=$1; shift; echo "--- $sh $* t=$(el)"; env "$@" timeout 120 $B/bin/vulkan_gemv_lab --shapes $sh --reps 20 --glu --rope --copy-gbs 4200 > /tmp/lab.txt 2>&1; n=$((n+1)); cp /tmp/lab.txt $OUT/lab_$n.txt; grep -E "^(8b|1b|05b) |PASSED|FAIL|rror" /tmp/lab.txt | head -20; grep -i -E "strided|skew" /tmp/lab.txt | grep -i -E "regist|spill|shared|local" | sort -u | head -12; }
n=0; echo "=== lab t=$(el)"
lab 8b D=0
lab 8b TESSERA_VULKAN_STRIDED=1 TESSERA_VULKAN_PIPELINE_STATS=1
lab 8b TESSERA_VULKAN_STRIDED=3 TESSERA_VULKAN_PIPELINE_STATS=1
lab 8b TESSERA_VULKAN_STRIDED=2 TESSERA_VULKAN_PIPELINE_STATS=1
lab 8b D=0 TESSERA_VULKAN_PIPELINE_STATS=1
lab 8b TESSERA_VULKAN_STRIDED=3
lab 8b TESSERA_VULKAN_LAB_READ=528
lab 1b,05b D=0
lab 1b,05b TESSERA_VULKAN_STRIDED=1
lab 1b,05b TESSERA_VULKAN_STRIDED=3
wait $CK
eb() { echo "  $* $(env "$@" timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
echo "=== engine 8B tg128 t=$(el)"
for v in D=0 TESSERA_VULKAN_STRIDED=3 TESSERA_VULKAN_STRIDED=1 D=0 TESSERA_VULKAN_STRIDED=1 TESSERA_VULKAN_STRIDED=3; do
  left && eb $v; done
echo "=== greedy text t=$(el)"
for v in TESSERA_VULKAN_STRIDED=3; do
  left && echo "  $v $(env $v timeout 60 $B/bin/engine run /tmp/$s "t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20" --raw -n 32 --temperature 0 --backend vulkan 2>/dev/null | tee $OUT/run_$v.txt | md5sum | cut -c1-12)"
done
if left; then
  echo "=== PROFILE=1 strided t=$(el)"
  TESSERA_VULKAN_STRIDED=3 TESSERA_VULKAN_PROFILE=1 timeout 90 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 64 -r 1 > $OUT/prof1_st.txt 2>&1
  grep -E "calls|tg64" $OUT/prof1_st.txt | head -30
fi
echo "total $(el) s"
