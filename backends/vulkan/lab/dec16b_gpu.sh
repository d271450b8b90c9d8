#!/bin/bash
# vk-dec16b (sixteenth session, second round). Not in the tree: needs a plugin built with
# results/dec16b_normrow_not_kept.diff applied (without it the knob does nothing). Result (notes
# vk-dec16b): same bits, 168 registers and no extra shared memory, but slower (8B tg128 -7.6%).
#
# The norm-fused decode groups on the NORMROW
# modules (matmul.comp NormRow: every workgroup normalizes the row once into the GEMVs' x, the
# norm output or a scratch row, then runs the plain skewed module's loop on it; knob
# TESSERA_VULKAN_NORMROW: 1 = without the paired epilogues (RoPE / SWIGLU their own
# dispatches), 2 = with them). On the H100, in ONE call from the repo root, carrying
# .dev/vk-dec16b/bundle.tar.xz (bin/ engine, vulkan_gemv_lab, vulkan_backend_test,
# op_conformance_test, text_golden_test of HEAD; lib/ core, libstdc++, libvulkan, the new
# plugin), .dev/old16b.tar.xz (HEAD 7f8c0b1's stripped engine + plugins: old/), .gl (glvnd) and
# this script.
# 1. lab `vulkan_gemv_lab --reps 100 --glu --rope` with PIPELINE_STATS=1: old (HEAD's plugin,
#    outputs dumped) / def / n1 / n2 / ceil, checked bit for bit against old, 8B + 1B, two rounds
#    (old, n1, n2 in both);
# 2. engine: greedy -n 16 byte compare old / pick (8B, 1B); tg128 (-p 16 -n 128 -r 2) old / pick
#    interleaved, 8B two rounds, 1B two; CUDA 8B once (HEAD's plugin);
# 3. vulkan_backend_test (decode / norm / epilogue cases), op conformance, golden with the pick.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/dec16blogs; mkdir -p $L  # every log, tarred into $OUT/logs.tgz
trap 'tar czf $OUT/logs.tgz -C /tmp dec16blogs' EXIT
T0=$(date +%s); DEADLINE=${DEADLINE:-250}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
SHAPES=${SHAPES:-"llama-3.1-8b llama-3.2-1b"}
for s in $SHAPES; do rm -f /tmp/$s.done; done
(for s in $SHAPES; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done; done) &
mkdir -p .dev/vk-dec16b; tar xJf .dev/vk-dec16b/bundle.tar.xz -C .dev/vk-dec16b
B=$PWD/.dev/vk-dec16b/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p $B/old && tar xJf .dev/old16b.tar.xz -C $B/old
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
V=TESSERA_VULKAN_
declare -A KN=([old]="" [def]="" [n1]="${V}NORMROW=1" [n2]="${V}NORMROW=2"
  [ceil]="${V}FUSE_NORM=0 ${V}DECODE_SKEW_PLAIN=1")
lab() { local tag=$1 run=$2 sh=$3; local so=$NEW a="--check /tmp/old.bin"
  case $tag in old) so=$OLD; a=; [ $run = 1 ] && a="--dump /tmp/old.bin";; esac
  env ${KN[$tag]} ${V}PIPELINE_STATS=1 TESSERA_VULKAN_PLUGIN=$so timeout 60 $B/bin/vulkan_gemv_lab \
    --reps 100 --glu --rope --shapes $sh $a > $L/lab_${tag}_$run.log 2>&1
  echo "--- $tag r$run (${KN[$tag]}) rc=$? t=$(( $(date +%s) - T0 ))"
  grep -E "us/dispatch|same bits|also" $L/lab_${tag}_$run.log |
    sed -E 's/ +[0-9]+ dispatches +([0-9.]+) us\/dispatch +[0-9.]+ GB\/s +([0-9.]+) of copy.*; (.*)\)$/ \1 us \2 [\3]/' | cut -c1-120
  grep "pipeline stats matmul.comp skew" $L/lab_${tag}_$run.log | sort -u |
    sed -E 's/.*stats (matmul[^[]*).*(Register Count=[0-9]+), (Binary Size=[0-9]+).*(Shared Memory Size=[0-9]+).*/    \1 \2 \3 \4/'; }
echo "=== lab round 1"
for tag in old n1 n2 def ceil; do left && lab $tag 1 8b,1b; done
echo "=== lab round 2"
for tag in n2 n1 old; do left && lab $tag 2 8b,1b; done
echo "=== lab summary (us a dispatch; mean over runs)"
python3 - $L <<'EOF'
import re, sys, glob, os, collections
t = collections.defaultdict(list)
for f in sorted(glob.glob(f"{sys.argv[1]}/lab_*.log")):
    tag = os.path.basename(f)[4:-4].rsplit("_", 1)[0]
    for line in open(f):
        m = re.match(r"(\w+)\s+(\S+).*?\s([0-9.]+) us/dispatch", line)
        if m: t[(tag, m.group(1), m.group(2))].append(float(m.group(3)))
shapes = sorted({(k[1], k[2]) for k in t}, key=lambda s: (s[0] != "8b", s[1]))
tags = [g for g in ["old", "def", "n1", "n2", "ceil"] if any(k[0] == g for k in t)]
print("shape".ljust(12) + "".join(x.rjust(12) for x in tags))
for s in shapes:
    row = f"{s[0]} {s[1]}".ljust(12)
    for g in tags:
        v = t.get((g, s[0], s[1]))
        row += (f"{sum(v)/len(v):.2f}({len(v)})" if v else "-").rjust(12)
    print(row)
# The norm-fused work a layer: q/k/v + gate/up with the shapes' other dispatches (SWIGLU, RoPE
# when not fused), against old; the best same-bits config to /tmp/pick.
pick = None
for sh in ("8b", "1b"):
    extra = collections.defaultdict(float)
    for f in sorted(glob.glob(f"{sys.argv[1]}/lab_*.log")):
        tag = os.path.basename(f)[4:-4].rsplit("_", 1)[0]
        acc = collections.defaultdict(float); pend = 0.0
        for line in open(f):
            m = re.match(sh + r"\s+also \S+\s+\d+ calls\s+\S+ ms\s+([0-9.]+) us/call", line)
            if m: pend += float(m.group(1)); continue
            m = re.match(r"(\w+)\s+(\S+).*?\s([0-9.]+) us/dispatch", line)
            if m:
                if m.group(1) == sh and m.group(2) in ("qkv", "gate/up"): acc[m.group(2)] += pend
                pend = 0.0
        extra[tag] = max(extra[tag], sum(acc.values()))
    lay = {}
    for g in tags:
        parts = [t.get((g, sh, n)) for n in ["qkv", "gate/up"]]
        if all(parts): lay[g] = sum(sum(v) / len(v) for v in parts) + extra[g]
    base = lay.get("old", 0)
    print(sh, "q/k/v + gate/up (+ their other dispatches):", {g: f"{v:.2f} ({v - base:+.2f})" for g, v in lay.items()})
    if sh == "8b":
        cands = {g: v for g, v in lay.items() if g in ("n1", "n2")}
        if cands: pick = min(cands, key=cands.get)
print("pick", pick)
open("/tmp/pick", "w").write(pick or "n2")
EOF
echo "  t=$(( $(date +%s) - T0 )) s"
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; n1|n2) echo ${KN[$1]};; *) echo TESSERA_NOTHING=1;; esac; }
PK=$(cat /tmp/pick); echo "=== engine pick: $PK"
PROMPT="The capital of France is a city that has many old buildings and"
eb() { local v=$1; shift; env $(venv $v) timeout 60 $B/bin/engine bench "$@" 2>&1 | grep -E "\| tg[0-9]|rror" | sed 's/^/    /'; }
for s in $SHAPES; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  echo "=== $s run -n 16 (byte compare) t=$(( $(date +%s) - T0 ))"
  for v in old $PK; do
    env $(venv $v) timeout 45 $B/bin/engine run /tmp/$s "$PROMPT" --raw -n 16 --temperature 0 --backend vulkan > $L/run_${s}_$v.txt 2> $L/run_${s}_$v.err
    echo "  $v rc=$? $(md5sum < $L/run_${s}_$v.txt | cut -c1-12)"
  done
  cmp -s $L/run_${s}_$PK.txt $L/run_${s}_old.txt && echo "  $PK same bytes" || echo "  $PK DIFFER"
  for o in "old $PK" "$PK old"; do
    for v in $o; do left || break; echo "=== $s vulkan tg128 $v"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2; done
  done
  if [ $s = llama-3.1-8b ]; then
    left && { echo "=== $s cuda tg128 (HEAD's plugin)"; eb old /tmp/$s --backend cuda -p 16 -n 128 -r 2; }
  fi
  echo "  t=$(( $(date +%s) - T0 )) s"
done
echo "=== suites (new plugin, ${KN[$PK]})"
if left; then
  env ${KN[$PK]} TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 \
    --gtest_filter='*Decode*:*Epilogue*:*Norm*:*Grouped*' > $L/vk_unit.log 2>&1; echo "unit rc=$?"
  grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/vk_unit.log | head -6
  env ${KN[$PK]} TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1; echo "conformance rc=$?"
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_conf.log | head -4
  env ${KN[$PK]} TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
    timeout 50 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1; echo "golden rc=$?"
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_golden.log | head -4
fi
echo "total $(( $(date +%s) - T0 )) s"
