#!/bin/bash
# vk20-kv call 2 (twentieth session): why the folded k RoPE + KV epilogue costs more than the
# dispatch it removes (call 1: 8B fused q/k/v 39.9 us a call vs ~26 + 9.3 us apart). Per-dispatch
# profiles (TESSERA_VULKAN_PROFILE=1, 140-token prompt + 32 new tokens) of the lab plugin's
# variants, TESSERA_VULKAN_LAB_KV=MASK (same bits): off = FUSE_KV_EPILOGUE=0 (HEAD's dispatches),
# x = off with the q/k/v group (q RoPE only, no k/v work) on the PAIRED=2 module (bit 4: the
# module's code vs PAIRED=1's on the same work), A = fused (call 1's form), nf = fused without
# the k/v-first order (bit 1), np = fused on the KVPRE=0 module (bit 2: the slot / position /
# frequency loads after the rows), npnf = both; then engine tg128 of the best against off.
# Carry .dev/bundle20.tar.xz, .dev/vk20-kv/gpu2 (new.tar.xz, this script), .gl:
# `bash .dev/vk20-kv/gpu2/vk20kv2_gpu.sh`. Needs results/vk20kv_kv_epilogue_not_kept.diff applied
# (LAB_KV and the KVPRE=0 module are in it). Call 2's record (03:21 UTC, 45 s; the checkpoints were
# already there, so the 1B engine rounds, which only ran while the 8B one was being written, did
# not run): results/vk20kv/call2/.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/vk20kv2logs; mkdir -p $L
trap 'cp $L/console.log $OUT/ 2>/dev/null; tar czf $OUT/logs.tgz -C /tmp vk20kv2logs' EXIT
exec > >(tee $L/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-95}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
G=${G:-.dev/vk20-kv/gpu2}
for s in llama-3.1-8b llama-3.2-1b; do rm -f /tmp/$s.done; done
(python3 bench/make_checkpoint.py --shape llama-3.1-8b --out /tmp/llama-3.1-8b > /tmp/8b.ckpt.log 2>&1; touch /tmp/llama-3.1-8b.done) &
(python3 bench/make_checkpoint.py --shape llama-3.2-1b --out /tmp/llama-3.2-1b > /tmp/1b.ckpt.log 2>&1; touch /tmp/llama-3.2-1b.done) &
mkdir -p /tmp/new && tar xJf .dev/bundle20.tar.xz -C /tmp bundle/lib bundle/bin/engine && tar xJf $G/new.tar.xz -C /tmp/new
B=/tmp/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
cp /tmp/new/libtessera_backend_vulkan.so $P/libtessera_backend_vulkan.so
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V=TESSERA_VULKAN_
venv() { case $1 in off) echo ${V}FUSE_KV_EPILOGUE=0;; x) echo ${V}FUSE_KV_EPILOGUE=0 ${V}LAB_KV=4;;
  nf) echo ${V}LAB_KV=1;; np) echo ${V}LAB_KV=2;; npnf) echo ${V}LAB_KV=3;; *) echo TESSERA_NOTHING=1;; esac; }
wait_ckpt() { local i=0; while [ ! -f /tmp/$1.done ] && [ $i -lt 150 ]; do sleep 1; i=$((i + 1)); done; echo "=== $1 ready t=$(el)"; }
eb() { local v=$1; shift; env $(venv $v) timeout 30 $B/bin/engine bench "$@" 2>&1 | grep -E "\| tg[0-9]|rror" | sed 's/^/    /'; }
PR=$(python3 -c "print(' '.join('t%d' % (i % 5000 + 1) for i in range(140)))")
prof() { local v=$1 s=$2
  env $(venv $v) ${V}PROFILE=1 ${V}PIPELINE_STATS=1 timeout 30 $B/bin/engine run /tmp/$s "$PR" \
    --raw -n 32 --temperature 0 --backend vulkan > $L/prof_${s}_$v.txt 2> $L/prof_${s}_$v.log
  echo "=== $s PROFILE=1 $v rc=$? t=$(el) md5 $(md5sum < $L/prof_${s}_$v.txt | cut -c1-12)"
  grep -E "profile:|skew|rope.comp|pipeline stats.*pair" $L/prof_${s}_$v.log | sed -e 's/^.*\] //' -e 's/, Stack Size.*Shared/ shared/' | head -8; }
s=llama-3.2-1b; wait_ckpt $s
for v in x off A np nf; do left && prof $v $s; done
for v in off np A off np A off np A; do  # while the 8B checkpoint is being written
  left && [ ! -f /tmp/llama-3.1-8b.done ] || break; echo "=== $s tg128 $v t=$(el)"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2; done
s=llama-3.1-8b; wait_ckpt $s
for v in x off A np npnf; do left && prof $v $s; done
echo "total $(el) s"
