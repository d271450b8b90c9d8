#!/bin/bash
# Lead, twenty-fifth session, call 1 (H200): (1) vk24-qkv's measurement (lab/vk24qkv_gpu.sh,
# run from .dev/vk24-qkv/run.sh with this session's bundle) and (2) the narrowed PREF rule of
# HEAD (ae8dbca: PREF twins on the 8B o / down only) checked in the engine: Vulkan tg128 of the
# 0.5B / 1B / 8B with the rule (default) and TESSERA_VULKAN_DECODE_PREF=0, interleaved.
#   run(command="bash backends/vulkan/lab/lead25a_gpu.sh", carry=[".gl", ".dev/bundle25.tar.xz",
#       ".dev/vk24-qkv/new.tar.xz", ".dev/vk24-qkv/run.sh"])
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s)
for s in qwen2.5-0.5b llama-3.2-1b; do
  (python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done) &
done
BUNDLE=.dev/bundle25.tar.xz DEADLINE=${DEADLINE:-150} timeout 260 bash .dev/vk24-qkv/run.sh 2>&1 | tee $OUT/vk24qkv_console.txt
echo "=== narrowed PREF rule t=$(( $(date +%s) - T0 ))"
B=$PWD/.dev/bundle; export LD_LIBRARY_PATH=$B/lib
[ -n "${VK_DRIVER_FILES:-}" ] || { $B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; }
L=/tmp/lead25a; mkdir -p $L
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  for i in 0 60; do [ -f /tmp/$s.done ] && break; sleep 1; done
  for side in def p0 p0 def; do
    [ $(( $(date +%s) - T0 )) -lt ${DEADLINE2:-300} ] || break
    pe=X=1; [ $side = p0 ] && pe=TESSERA_VULKAN_DECODE_PREF=0
    env $pe timeout 60 $B/bin/engine bench /tmp/$s --backend vulkan -p 16 -n 128 -r 2 2>&1 | grep -E "\| tg128|rror" > $L/tg_${s}_$side.$RANDOM.log
    echo "  $s $side: $(cat $L/tg_${s}_$side.*.log | tail -1 | awk '{print $4, $5, $6}')"
  done
  [ $s = llama-3.1-8b ] || { env timeout 45 $B/bin/engine run /tmp/$s "t1 t2 t3 t4" --raw -n 32 --temperature 0 --backend vulkan > $L/run_$s.txt 2>/dev/null; echo "  $s vulkan md5 $(md5sum < $L/run_$s.txt | cut -c1-12)"; }
done
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  for side in def p0; do echo "$s $side mean $(cat $L/tg_${s}_$side.*.log 2>/dev/null | awk '{s += $4; n++} END {if (n) printf "%.2f (%d)", s / n, n}')"; done
done
tar czf $OUT/lead25a_logs.tgz -C /tmp lead25a
echo "total $(( $(date +%s) - T0 )) s"
