#!/bin/bash
# vk21-share (twenty-first session): attention.comp, rope.comp and rows.comp with one copy of the
# logic the fixed-shape modules repeated (shared functions; macros where an array or a counter
# type needs one). Old = HEAD b104649's Vulkan plugin (bundle21), new = this tree's. One call from
# the repo root, carrying .dev/bundle21.tar.xz, .dev/vk21-share/gpu.tar.xz (new.so: the new
# plugin, stripped; this script) and .gl: `bash backends/vulkan/lab/vk21share_gpu.sh`.
# (1) vulkan_attn_lab (8B / 1B / 0.5B head shapes at 16 / 144 / 512 keys, batches of 128): old
#     dumps, new checks the bits (defaults, then the split forced on every grid), old and new
#     again, timing each (old new old new interleaved).
# (2) engine 8B: greedy md5 (16 tokens) old / new, tg128 (`-p 16 -n 128 -r 2`) old new new old
#     (old new again while time is left).
# No step starts past $DEADLINE s; logs in $OUT.
# History: call 1 (05:25 UTC, H100, 89 s wall; results/vk21share/call1).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-185}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
S=llama-3.1-8b
(python3 bench/make_checkpoint.py --shape $S --out /tmp/$S > /tmp/$S.ckpt.log 2>&1; touch /tmp/$S.done) &
tar xJf .dev/bundle21.tar.xz -C /tmp
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p $B/old /tmp/new && tar xJf .dev/vk21-share/gpu.tar.xz -C /tmp/new
cp $P/*.so $B/old/
cp /tmp/new/new.so $P/libtessera_backend_vulkan.so
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
md5sum $NEW $OLD | cut -c1-12
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
LAB=$B/bin/vulkan_attn_lab

# (1) Lab.
LABARGS="--reps 50 --keys 16,144,512 --max-keys 1024 --batch 128 --copies 8"
echo "=== lab old (dump) t=$(el)"
TESSERA_VULKAN_PIPELINE_STATS=1 TESSERA_VULKAN_PLUGIN=$OLD timeout 40 $LAB $LABARGS --dump /tmp/old.bin > $OUT/lab_old.log 2>&1
echo "rc=$?"; grep -E "us/call|PASSED|FAILED" $OUT/lab_old.log | sed 's/Hq.*D *[0-9]* //'
lab() { local name=$1 plugin=$2; shift 2
  left || return
  echo "=== lab $name ($*) t=$(el)"
  env "$@" TESSERA_VULKAN_PLUGIN=$plugin timeout 40 $LAB $LABARGS --check /tmp/old.bin > $OUT/lab_$name.log 2>&1
  echo "rc=$?"; grep -E "us/call|same bits|differ|PASSED|FAILED" $OUT/lab_$name.log | sed 's/Hq.*D *[0-9]* //'; }
lab new $NEW TESSERA_VULKAN_PIPELINE_STATS=1
echo "driver statistics of the attention pipelines, old vs new (diff; empty = the same):"
diff <(grep "pipeline stats" $OUT/lab_old.log | sort -u) <(grep "pipeline stats" $OUT/lab_new.log | sort -u)
lab forced $NEW TESSERA_VULKAN_ATTN_SPLIT_GROUPS=100000
lab old2 $OLD X=1
lab new2 $NEW X=1

# (2) Engine 8B.
i=0; while [ ! -f /tmp/$S.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done
echo "=== $S ready t=$(el)"
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; *) echo X=1;; esac; }
for side in old new; do
  env $(venv $side) TESSERA_VULKAN_PIPELINE_STATS=1 timeout 60 $B/bin/engine --backend vulkan run /tmp/$S \
    "t1 t2 t3 t4" --raw -n 16 --temperature 0 2> $OUT/run_$side.err > /tmp/vrun_$side.txt
  echo "  $S $side vulkan md5 $(md5sum < /tmp/vrun_$side.txt | cut -c1-12) ($(wc -c < /tmp/vrun_$side.txt) bytes)"
done
echo "driver statistics of every pipeline the 8B run made, old vs new (diff; empty = the same):"
diff <(grep -o "pipeline stats.*" $OUT/run_old.err | sort -u) <(grep -o "pipeline stats.*" $OUT/run_new.err | sort -u)
grep -o "pipeline stats.*" $OUT/run_new.err | grep -E "stats (rope|rows|attention)" | sort -u
for side in old new new old old new; do
  left || break
  env $(venv $side) timeout 60 $B/bin/engine bench --backend vulkan /tmp/$S -p 16 -n 128 -r 2 2>&1 |
    grep -E "\| (pp|tg)|rror" | sed "s/^/    $side /"
done
echo "total $(el) s"
