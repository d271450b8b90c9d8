#!/bin/bash
# Vulkan beside CUDA, prefill pp512 and decode tg128, final tree (issue 6 table).
set -u
T0=$(date +%s)
tar xzf .dev/bundle.tar.gz -C .dev
B=.dev/bundle; export LD_LIBRARY_PATH=$PWD/$B/lib
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -E "^(vulkan|cuda)" | head -3
(for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; done) &
eb() { timeout 100 $B/bin/engine bench "$@" 2>&1 | grep -E "pp[0-9]|tg[0-9]|rror" | sed 's/^/    /'; }
for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  echo "=== $s pp512 cuda"; eb --backend cuda /tmp/$s -p 512 -n 0 -r 2
  echo "=== $s pp512 vulkan"; eb --backend vulkan /tmp/$s -p 512 -n 0 -r 2
  echo "=== $s pp512 vulkan coop"; TESSERA_VULKAN_COOPMAT=1 eb --backend vulkan /tmp/$s -p 512 -n 0 -r 2
  echo "=== $s tg128 vulkan"; eb --backend vulkan /tmp/$s -p 16 -n 128 -r 2
  echo "  t=$(( $(date +%s) - T0 )) s"
done
