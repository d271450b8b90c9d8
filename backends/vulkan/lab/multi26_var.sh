#!/bin/bash
# Twenty-sixth session, the lead's register experiment (H200): the tree's MultiRows (B) against
# two bf16 twins (results/multi26/twins_CD_not_kept.diff): C = half of the step's weight words
# loaded before the x tile's copy, the rest after its barrier (-DMULTI_PREF=2); D = 2 weight rows
# a subgroup at most (-DMULTI_ROWS_MAX=2; run with TESSERA_VULKAN_MULTI_ROWS=2). The three
# stripped plugins, xz'ed, in .dev/multi26x/{B,C,D}.so.xz; the rest from bundle26.
#   run(command="bash backends/vulkan/lab/multi26_var.sh", carry=[".gl", ".dev/bundle26.tar.xz",
#       ".dev/multi26x"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-200}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
for s in llama-3.1-8b llama-3.2-1b; do
  rm -f /tmp/$s.done
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
tar xJf .dev/bundle26.tar.xz -C .dev
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib
for v in B C D; do rm -rf /tmp/nb$v && cp -r $B /tmp/nb$v && xz -dc .dev/multi26x/$v.so.xz > /tmp/nb$v/lib/tessera/backends/libtessera_backend_vulkan.so; done
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
venv() { [ $1 = D ] && echo TESSERA_VULKAN_MULTI_ROWS=2 || echo X=1; }
echo "=== registers t=$(el)"
wait_ckpt() { for i in $(seq 1 120); do [ -f /tmp/$1.done ] && return 0; sleep 1; done; return 1; }
wait_ckpt llama-3.2-1b
for v in B C D; do
  env $(venv $v) TESSERA_VULKAN_PIPELINE_STATS=1 LD_LIBRARY_PATH=/tmp/nb$v/lib timeout 60 /tmp/nb$v/bin/engine run /tmp/llama-3.2-1b "t1 t2 t3 t4" -n 1 --raw --temperature 0 --backend vulkan 2>&1 | grep -E "stats matmul.comp multi" | sed "s/^/$v /" | cut -c1-190
done
P20="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19 t20"
echo "=== md5 (20-token prompt) t=$(el)"
for s in llama-3.2-1b llama-3.1-8b; do wait_ckpt $s; line="$s:"
  for v in B C D; do
    env $(venv $v) LD_LIBRARY_PATH=/tmp/nb$v/lib timeout 45 /tmp/nb$v/bin/engine run /tmp/$s "$P20" --raw -n 32 --temperature 0 --backend vulkan > $OUT/run_${s}_$v.txt 2>&1
    line="$line $v rc=$? $(md5sum < $OUT/run_${s}_$v.txt | cut -c1-12)"
  done; echo "$line"
done
eb() { local s=$1 v=$2 par=$3 r=$4
  env $(venv $v) LD_LIBRARY_PATH=/tmp/nb$v/lib timeout 90 /tmp/nb$v/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 32 --parallel $par -r $r 2>&1 |
    grep -E "\| (pp|tg)[0-9]|rror" | awk -v h="  $s $v x$par -r $r" '{printf "%s %s %s", h, $2, $4; h=""} END {print ""}'; }
echo "=== bench t=$(el)"
for v in B C D D C B; do left && eb llama-3.1-8b $v 8 2; done
for v in B C D; do left && eb llama-3.1-8b $v 32 1; done
for v in B C D D C B; do left && eb llama-3.2-1b $v 8 2; done
echo "total $(el) s"
