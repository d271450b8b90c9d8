#!/bin/bash
# Thirty-first session (H200): the skewed decode modules' weights staged through shared memory
# (matmul.comp STAGED, TESSERA_VULKAN_DECODE_STAGED=MASK: 1 norm, 2 paired, 4 plain) against the
# default modules: vulkan_gemv_lab (same bits against the default's dump, registers), engine
# tg128 interleaved beside CUDA, greedy md5s.
#   run(command="bash backends/vulkan/lab/vk31_gpu.sh", carry=[".gl", ".dev/s31"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-500}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in ${CKPTS-llama-3.1-8b}; do
  python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1 &
done
tar xJf .dev/s31/b.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
# a rebuilt plugin, where the call carries one
[ -f .dev/s31/vk.so.xz ] && xz -dc .dev/s31/vk.so.xz > $P/libtessera_backend_vulkan.so
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export TESSERA_VULKAN_PLUGIN=$P/libtessera_backend_vulkan.so
n=0
# lab SHAPES "LAB ARGS" ENV...
lab() { local sh=$1 la=$2; shift 2; echo "--- $sh $la $* t=$(el)"; env D=0 "$@" timeout 120 $B/bin/vulkan_gemv_lab --shapes $sh --reps 20 --glu --rope --copy-gbs 4230 $la > /tmp/lab.txt 2>&1; n=$((n+1)); cp /tmp/lab.txt $OUT/lab_$n.txt; grep -E "^(8b|1b|05b|lm8b) |differ|PASSED|FAIL|rror" /tmp/lab.txt | head -20; grep -i -E "stg|skew" /tmp/lab.txt | grep -i -E "regist|spill|shared|local" | sort -u | head -12; }
echo "=== lab t=$(el)"
if [ -n "${LABS:-}" ]; then eval "$LABS"; else
lab 8b,lm8b "--dump $OUT/ref8.bin"
lab 8b,lm8b "--check $OUT/ref8.bin" TESSERA_VULKAN_DECODE_STAGED=7 TESSERA_VULKAN_PIPELINE_STATS=1
lab 8b "" TESSERA_VULKAN_PIPELINE_STATS=1
lab 8b "" TESSERA_VULKAN_DECODE_STAGED=7
lab 8b ""
lab 8b "" TESSERA_VULKAN_LAB_READ=528
lab 1b,05b "--dump $OUT/ref1.bin"
lab 1b,05b "--check $OUT/ref1.bin" TESSERA_VULKAN_DECODE_STAGED=7
fi
wait
eb() { local be=$1; shift; echo "  $be $* $(env "$@" timeout 60 $B/bin/engine bench /tmp/$s --backend $be -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
s=llama-3.1-8b
echo "=== engine 8B tg128 t=$(el)"
for v in ${ENG:-D=0 TESSERA_VULKAN_DECODE_STAGED=7 TESSERA_VULKAN_DECODE_STAGED=3 D=0 TESSERA_VULKAN_DECODE_STAGED=7 TESSERA_VULKAN_DECODE_STAGED=4}; do
  left && eb vulkan $v; done
left && eb cuda D=0
echo "=== greedy text t=$(el)"
for v in D=0 TESSERA_VULKAN_DECODE_STAGED=7; do
  left && echo "  $v $(env $v timeout 60 $B/bin/engine run /tmp/$s "t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20" --raw -n 32 --temperature 0 --backend vulkan 2>/dev/null | tee $OUT/run_$n$v.txt | md5sum | cut -c1-12)"
  n=$((n+1))
done
echo "total $(el) s"
