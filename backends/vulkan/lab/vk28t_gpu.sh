#!/bin/bash
# Twenty-eighth session, call 4 (H200): the skewed decode GEMV touching the next step's weight
# lines (matmul.comp TOUCH, TESSERA_VULKAN_TOUCH=1) against the same plugin without (lab + engine
# tg128 interleaved, md5s), and the GEMV lab with L2-resident weights (--l2-mb 1: two copies).
#   run(command="bash backends/vulkan/lab/vk28t_gpu.sh", carry=[".gl", ".dev/bundle27.tar.xz", ".dev/vk28"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-230}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle27.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
VK=$P/libtessera_backend_vulkan.so
xz -dc .dev/vk28/vk.so.xz > $VK
xz -dc .dev/vk28/gemvlab.xz > $B/bin/vulkan_gemv_lab; chmod +x $B/bin/vulkan_gemv_lab
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export TESSERA_VULKAN_PLUGIN=$VK
n=0
lab() { local sh=$1 l2=$2; shift 2; n=$((n+1)); echo "--- $sh l2-mb $l2 $* t=$(el)"; env "$@" timeout 100 $B/bin/vulkan_gemv_lab --shapes $sh --l2-mb $l2 --reps 20 --glu --rope --copy-gbs 4200 > $OUT/lab_$n.txt 2>&1; grep -E "^(8b|1b|05b|lm8b) |PASSED|FAIL" $OUT/lab_$n.txt | sed 's/ dispatches//;s/us\/dispatch/us/'; }
lab 8b,lm8b 256 D=0
lab 8b,lm8b 256 TESSERA_VULKAN_TOUCH=1
lab 1b,05b 256 D=0
lab 1b,05b 256 TESSERA_VULKAN_TOUCH=1
lab 8b,1b,05b 1 D=0
wait_ckpt() { for i in $(seq 1 150); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== md5 TOUCH=1 (HEAD: 0.5B 3a3763a3a87b, 1B 3304538b4d83, 8B fd5aaf203728) t=$(el)"
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do wait_ckpt $s
  TESSERA_VULKAN_TOUCH=1 timeout 60 $B/bin/engine run /tmp/$s "$P20" --raw -n 32 --temperature 0 --backend vulkan > $OUT/run.txt 2> $OUT/run.err
  echo "$s rc=$? $(md5sum < $OUT/run.txt | cut -c1-12) t=$(el)"
done
eb() { local s=$1; shift; echo "  $s $* $(env "$@" timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 128 -r 2 2>&1 | grep -E '\| tg[0-9]|rror' | awk '{printf "%s %s %s %s", $2, $4, $5, $6}') t=$(el)"; }
echo "=== tg128 interleaved t=$(el)"
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  for v in 0 1 1 0; do left && eb $s TESSERA_VULKAN_TOUCH=$v; done
done
echo "total $(el) s"
