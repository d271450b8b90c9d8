#!/bin/bash
# vk-dec15 (fifteenth session): the bound of "the RMS_NORM's sum of squares from the producer's
# partials" (a) and "pre-weighted x" (b) for the norm-fused decode GEMVs (q/k/v + q RoPE,
# gate/up + SWIGLU), on the H100, in ONE call from the repo root, carrying
# .dev/vk-dec15/bundle.tar.gz (bin/vulkan_gemv_lab, new/ = the Vulkan plugin of this tree, lib/ =
# libstdc++, libgcc_s, libvulkan), .dev/old15.tar.xz (HEAD 0441dff's stripped plugins: old/) and
# .gl (glvnd). The bound bits are not in the tree: build the plugin from a tree with
# results/dec15_norm_bound_not_kept.diff applied (without it every bit but 1 does nothing).
# Result (README / notes vk-dec15): (a) -2.5 us a layer on 8B, (b) +24..+40 us: not built.
# Lab-only bound bits of TESSERA_VULKAN_NORM_BATCH (matmul.comp NORM_BATCH_ON; WRONG outputs,
# timing only; 1 = the default): 2 = NormScale sums 1024 values instead of K (a residual GEMV's
# 4-row-block partials of a 4096-wide row; 256 with bit 8); 4 = the loop loads x only, times
# the scale (no norm-weight loads: x pre-weighted by the producer); 8 (plain skewed modules, the
# o / down GEMVs) = each row block's sum of squares stored by lane 0 (the producer's extra work).
# `vulkan_gemv_lab --reps 100 --glu --rope` (the paired modules the engine runs), 8B and 1B
# shapes, old (HEAD's plugin, outputs dumped) / new default (checked bit for bit against old) /
# bound variants interleaved, two rounds, then 8B a third round; the driver's register count of
# the paired module per run (PIPELINE_STATS=1). ROUND=2 (call 2): bits 16 / 32 (see below).
# README / notes: vk-dec15 section.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/dec15logs; mkdir -p $L  # every log, tarred into $OUT/logs.tgz
trap 'tar czf $OUT/logs.tgz -C /tmp dec15logs' EXIT
T0=$(date +%s); DEADLINE=${DEADLINE:-150}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
mkdir -p .dev/vk-dec15; tar xzf .dev/vk-dec15/bundle.tar.gz -C .dev/vk-dec15
B=$PWD/.dev/vk-dec15/bundle; export LD_LIBRARY_PATH=$B/lib
mkdir -p $B/old && tar xJf .dev/old15.tar.xz -C $B/old
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
NEW=$B/new/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
TESSERA_VULKAN_PLUGIN=$OLD timeout 30 $B/bin/vulkan_gemv_lab --reps 1 --shapes 05b > $L/probe.log 2>&1
grep -q "no device" $L/probe.log && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V=TESSERA_VULKAN_
# tag -> knobs (old = HEAD's plugin)
declare -A KN=([old]="" [def]="" [p]="${V}NORM_BATCH=3" [w]="${V}NORM_BATCH=5" [pw]="${V}NORM_BATCH=7"
  [pwx]="${V}NORM_BATCH=15" [px]="${V}NORM_BATCH=11" [ceil]="${V}FUSE_NORM=0 ${V}DECODE_SKEW_PLAIN=1")
lab() { local tag=$1 run=$2 sh=$3; local so=$NEW a="--check /tmp/old.bin"
  case $tag in old) so=$OLD; a=; [ $run = 1 ] && a="--dump /tmp/old.bin";; esac
  env ${KN[$tag]} ${V}PIPELINE_STATS=1 TESSERA_VULKAN_PLUGIN=$so timeout 60 $B/bin/vulkan_gemv_lab \
    --reps 100 --glu --rope --shapes $sh $a > $L/lab_${tag}_$run.log 2>&1
  echo "--- $tag r$run (${KN[$tag]}) rc=$? t=$(( $(date +%s) - T0 ))"
  grep -E "us/dispatch|same bits" $L/lab_${tag}_$run.log |
    sed -E 's/ +[0-9]+ dispatches +([0-9.]+) us\/dispatch +[0-9.]+ GB\/s +([0-9.]+) of copy.*; (.*)\)$/ \1 us \2 [\3]/' | cut -c1-110
  grep "8b   pipeline stats matmul.comp skew+norm+pair (bf16)" $L/lab_${tag}_$run.log | sort -u |
    sed -E 's/.*(Register Count=[0-9]+), (Binary Size=[0-9]+).*(Shared Memory Size=[0-9]+).*/    \1 \2 \3/' | head -1; }
if [ "${ROUND:-1}" = 2 ]; then
  # Call 2: 16 = raw x in the loop, the scale on each row's total (the plain module's loop;
  # (b) with the scale moved out of the loop), 32 = x and the norm weight as now, the scale on
  # the row's total, 19 = 16 + 2 (the 1024-value sum of squares: (a) + (b) + the scale moved); 1 = batched as always.
  KN+=([w2]="${V}NORM_BATCH=17" [pw2]="${V}NORM_BATCH=19" [r]="${V}NORM_BATCH=33")
  for tag in old def w w2 pw2 r; do left && lab $tag 1 8b,1b; done
  left && lab ceil 1 8b
  for tag in r pw2 w2 w def old; do left && lab $tag 2 8b,1b; done
  for tag in w2 def r pw2; do left && lab $tag 3 8b; done
else
  for tag in old def p w pw pwx; do left && lab $tag 1 8b,1b; done
  left && lab ceil 1 8b
  for tag in pwx pw w p def old px; do left && lab $tag 2 8b,1b; done
  for tag in old pw def pwx w; do left && lab $tag 3 8b; done
fi
echo "=== summary (us a dispatch; mean over runs)"
python3 - $L <<'EOF'
import re, sys, glob, os, collections
t = collections.defaultdict(list)
for f in sorted(glob.glob(f"{sys.argv[1]}/lab_*.log")):
    tag = os.path.basename(f)[4:-4].rsplit("_", 1)[0]
    for line in open(f):
        m = re.match(r"(\w+)\s+(\S+).*?\s([0-9.]+) us/dispatch", line)
        if m: t[(tag, m.group(1), m.group(2))].append(float(m.group(3)))
shapes = sorted({(k[1], k[2]) for k in t}, key=lambda s: (s[0] != "8b", s[1]))
tags = [g for g in ["old", "def", "p", "w", "pw", "pwx", "px", "w2", "pw2", "r", "ceil"]
        if any(k[0] == g for k in t)]
print("shape".ljust(14) + "".join(x.rjust(16) for x in tags))
for s in shapes:
    row = f"{s[0]} {s[1]}".ljust(14)
    for g in tags:
        v = t.get((g, s[0], s[1]))
        row += (f"{sum(v)/len(v):.2f}({len(v)})" if v else "-").rjust(16)
    print(row)
for m in ["8b", "1b"]:
    lay = {}
    for g in tags:
        parts = [t.get((g, m, n)) for n in ["qkv", "gate/up", "o", "down"]]
        if all(parts): lay[g] = sum(sum(v) / len(v) for v in parts)
    base = lay.get("def", lay.get("old"))
    print(m, "layer GEMVs (qkv+gate/up+o+down):", {g: f"{v:.2f} ({v - base:+.2f})" for g, v in lay.items()})
EOF
echo "total $(( $(date +%s) - T0 )) s"
