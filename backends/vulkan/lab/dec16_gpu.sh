#!/bin/bash
# vk-dec16 (sixteenth session). Nothing of the kernel work is in the tree: ROUND=1 / 2 need a
# plugin built with results/dec16_pairx_kps_not_kept.diff applied (ROUND=1 as run: plus
# results/dec16_pairx_call1_matmul_on_top.diff), ROUND=3 with
# results/dec16_writenormed_spread_not_kept.diff; without them the knobs below do nothing.
# Results (README / notes vk-dec16): PAIRX, the K-split code in the NORM modules and the spread
# norm-output stores are the same bits and do not pay on the H100.
#
# The norm-fused decode GEMVs' paired epilogues within a subgroup's
# row block (matmul.comp PAIRX: the plain skewed module's loop, set A's rows then set B's in one
# row block, the pairs met by a subgroupShuffle; TESSERA_VULKAN_DECODE_PAIRX = 1 with the norm
# prologue (skew+norm+pairx), 2 with the RMS_NORM its own dispatch (skew+pairx)), and where the
# norm+pair module's time goes (lab-only bits of TESSERA_VULKAN_NORM_BATCH, WRONG outputs: 2 = no
# prologue (scale 1), 4 = the loop loads raw x). On the H100, in ONE call from the repo root,
# carrying .dev/vk-dec16/bundle.tar.gz (bin/ engine, vulkan_gemv_lab, vulkan_backend_test,
# op_conformance_test, text_golden_test; lib/ core, libstdc++, libvulkan, the new plugins),
# .dev/old16.tar.xz (HEAD fee64b5's stripped engine + plugins: old/) and .gl (glvnd).
# 1. lab `vulkan_gemv_lab --reps 100 --glu --rope` with PIPELINE_STATS=1: old (HEAD's plugin,
#    outputs dumped) / def / unp (unpaired skew+norm) / ceil (plain skewed module on the normed
#    row) / nx (PAIRX=1) / px (PAIRX=2) checked bit for bit against old, 8B + 1B, two rounds;
#    the diagnostic bits on 8B once;
# 2. engine: greedy -n 16 byte compare old / nx / px (8B, 1B); tg128 (-p 16 -n 128 -r 2) old /
#    nofuse (FUSE_NORM=0 DECODE_SKEW_PLAIN=1) / nx / px interleaved, 8B two rounds, 1B one;
#    CUDA 8B once (HEAD's plugin);
# 3. vulkan_backend_test (decode / norm / epilogue cases) with PAIRX=1 and 2, op conformance +
#    golden with the call's pick.
# ROUND=2 (call 2; PAIRX's set B looked up after the loop): NORM_BATCH bit 8 = the plain
# module's K-split code compiled into the NORM modules (never taken): k9 (pair), u9 (unpaired),
# nx9; diagnostics (8B, WRONG outputs) u15 / d15 / nx15 / u11; then the best same-bits lab
# config (8B q/k/v + gate/up with their other dispatches) against old in the engine.
# ROUND=3 (call 3; the tree's change: WriteNormed spread over the workgroups, same bits): lab
# old / def interleaved, three rounds (8B + 1B); engine greedy byte compare and tg128 old / def,
# 8B three rounds, 1B two; CUDA 8B once; the suites with the new plugin.
# Steps stop starting past $DEADLINE s. README / notes: vk-dec16 section.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/dec16logs; mkdir -p $L  # every log, tarred into $OUT/logs.tgz
trap 'tar czf $OUT/logs.tgz -C /tmp dec16logs' EXIT
T0=$(date +%s); DEADLINE=${DEADLINE:-220}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
SHAPES=${SHAPES:-"llama-3.1-8b llama-3.2-1b"}
for s in $SHAPES; do rm -f /tmp/$s.done; done
(for s in $SHAPES; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done; done) &
mkdir -p .dev/vk-dec16; tar xzf .dev/vk-dec16/bundle.tar.gz -C .dev/vk-dec16
B=$PWD/.dev/vk-dec16/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p $B/old && tar xJf .dev/old16.tar.xz -C $B/old
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
V=TESSERA_VULKAN_
declare -A KN=([old]="" [def]="" [unp]="${V}FUSE_SWIGLU=0 ${V}FUSE_ROPE_Q=0"
  [ceil]="${V}FUSE_NORM=0 ${V}DECODE_SKEW_PLAIN=1" [nx]="${V}DECODE_PAIRX=1" [px]="${V}DECODE_PAIRX=2"
  [d2]="${V}NORM_BATCH=3" [d4]="${V}NORM_BATCH=5" [d6]="${V}NORM_BATCH=7"
  [u4]="${V}FUSE_SWIGLU=0 ${V}FUSE_ROPE_Q=0 ${V}NORM_BATCH=5"
  [u6]="${V}FUSE_SWIGLU=0 ${V}FUSE_ROPE_Q=0 ${V}NORM_BATCH=7"
  [nx2]="${V}DECODE_PAIRX=1 ${V}NORM_BATCH=3" [nx4]="${V}DECODE_PAIRX=1 ${V}NORM_BATCH=5"
  [nx6]="${V}DECODE_PAIRX=1 ${V}NORM_BATCH=7"
  [k9]="${V}NORM_BATCH=9" [u9]="${V}FUSE_SWIGLU=0 ${V}FUSE_ROPE_Q=0 ${V}NORM_BATCH=9"
  [nx9]="${V}DECODE_PAIRX=1 ${V}NORM_BATCH=9" [d15]="${V}NORM_BATCH=15"
  [u15]="${V}FUSE_SWIGLU=0 ${V}FUSE_ROPE_Q=0 ${V}NORM_BATCH=15"
  [u11]="${V}FUSE_SWIGLU=0 ${V}FUSE_ROPE_Q=0 ${V}NORM_BATCH=11" [nx15]="${V}DECODE_PAIRX=1 ${V}NORM_BATCH=15")
lab() { local tag=$1 run=$2 sh=$3; local so=$NEW a="--check /tmp/old.bin"
  case $tag in old) so=$OLD; a=; [ $run = 1 ] && a="--dump /tmp/old.bin";; d2|d4|d6|u4|u6|nx2|nx4|nx6|d15|u15|u11|nx15) a=;; esac
  env ${KN[$tag]} ${V}PIPELINE_STATS=1 TESSERA_VULKAN_PLUGIN=$so timeout 60 $B/bin/vulkan_gemv_lab \
    --reps 100 --glu --rope --shapes $sh $a > $L/lab_${tag}_$run.log 2>&1
  echo "--- $tag r$run (${KN[$tag]}) rc=$? t=$(( $(date +%s) - T0 ))"
  grep -E "us/dispatch|same bits|also" $L/lab_${tag}_$run.log |
    sed -E 's/ +[0-9]+ dispatches +([0-9.]+) us\/dispatch +[0-9.]+ GB\/s +([0-9.]+) of copy.*; (.*)\)$/ \1 us \2 [\3]/' | cut -c1-120
  grep "pipeline stats matmul.comp skew" $L/lab_${tag}_$run.log | sort -u |
    sed -E 's/.*stats (matmul[^[]*).*(Register Count=[0-9]+), (Binary Size=[0-9]+).*(Shared Memory Size=[0-9]+).*/    \1 \2 \3 \4/'; }
if [ "${ROUND:-1}" = 3 ]; then
  for r in 1 2 3; do
    echo "=== lab round $r"
    if [ $r = 2 ]; then o="def old"; else o="old def"; fi
    for tag in $o; do left && lab $tag $r 8b,1b; done
  done
elif [ "${ROUND:-1}" = 2 ]; then
  echo "=== lab round 1"
  for tag in old def k9 u9 nx nx9 px; do left && lab $tag 1 8b,1b; done
  echo "=== lab diagnostics (8B, WRONG outputs)"
  for tag in u15 d15 nx15 u11; do left && lab $tag 1 8b; done
  echo "=== lab round 2"
  for tag in px nx9 nx u9 k9 def old; do left && lab $tag 2 8b,1b; done
else
  echo "=== lab round 1"
  for tag in old def nx px ceil unp; do left && lab $tag 1 8b,1b; done
  echo "=== lab diagnostics (8B, WRONG outputs)"
  for tag in d6 u6 nx6 d4 u4 nx4 d2 nx2; do left && lab $tag 1 8b; done
  echo "=== lab round 2"
  for tag in px nx ceil def old; do left && lab $tag 2 8b,1b; done
fi
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
tags = [g for g in ["old", "def", "nx", "px", "ceil", "unp", "d6", "u6", "nx6", "d4", "u4", "nx4", "d2",
                    "nx2", "k9", "u9", "nx9", "u15", "d15", "nx15", "u11"]
        if any(k[0] == g for k in t)]
print("shape".ljust(12) + "".join(x.rjust(12) for x in tags))
for s in shapes:
    row = f"{s[0]} {s[1]}".ljust(12)
    for g in tags:
        v = t.get((g, s[0], s[1]))
        row += (f"{sum(v)/len(v):.2f}({len(v)})" if v else "-").rjust(12)
    print(row)
# The 8B norm-fused work a layer: q/k/v + gate/up with the shapes' other dispatches (a separate
# RMS_NORM, SWIGLU, RoPE), against def; the best same-bits config to /tmp/pick.
extra = collections.defaultdict(float)
for f in sorted(glob.glob(f"{sys.argv[1]}/lab_*.log")):
    tag = os.path.basename(f)[4:-4].rsplit("_", 1)[0]
    acc = collections.defaultdict(float); pend = 0.0
    for line in open(f):
        m = re.match(r"8b\s+also \S+\s+\d+ calls\s+\S+ ms\s+([0-9.]+) us/call", line)
        if m: pend += float(m.group(1)); continue
        m = re.match(r"(\w+)\s+(\S+).*?\s([0-9.]+) us/dispatch", line)
        if m:
            if m.group(1) == "8b" and m.group(2) in ("qkv", "gate/up"): acc[m.group(2)] += pend
            pend = 0.0
    extra[tag] = max(extra[tag], sum(acc.values()))
lay = {}
for g in tags:
    parts = [t.get((g, "8b", n)) for n in ["qkv", "gate/up"]]
    if all(parts): lay[g] = sum(sum(v) / len(v) for v in parts) + extra[g]
base = lay.get("def", lay.get("old", 0))
print("8b q/k/v + gate/up (+ their other dispatches):", {g: f"{v:.2f} ({v - base:+.2f})" for g, v in lay.items()})
cands = {g: v for g, v in lay.items() if g in ("nx", "px", "k9", "u9", "nx9")}
if cands:
    best = min(cands, key=cands.get)
    print("pick", best, f"{cands[best] - base:+.2f} us")
    open("/tmp/pick", "w").write(best if cands[best] < base - 2.0 else "")
EOF
echo "  t=$(( $(date +%s) - T0 )) s"
# Engine: v = old (HEAD's plugins first through TESSERA_BACKEND_PATH) | nofuse | nx | px.
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; nofuse) echo ${KN[ceil]};;
  nx|px|k9|u9|nx9) echo ${KN[$1]};; *) echo TESSERA_NOTHING=1;; esac; }
EV="nx px"; O1="old nofuse nx px"; O2="px nx nofuse old"
if [ "${ROUND:-1}" = 2 ]; then
  PK=$(cat /tmp/pick 2>/dev/null); echo "=== engine pick: '${PK}'"
  EV="$PK"; O1="old $PK"; O2="$PK old"
  [ -z "$PK" ] && SHAPES=""  # no lab gain: no engine runs
elif [ "${ROUND:-1}" = 3 ]; then
  PK=def; EV="def"; O1="old def"; O2="def old"
fi
PROMPT="The capital of France is a city that has many old buildings and"
eb() { local v=$1; shift; env $(venv $v) timeout 60 $B/bin/engine bench "$@" 2>&1 | grep -E "\| tg[0-9]|rror" | sed 's/^/    /'; }
for s in $SHAPES; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  echo "=== $s run -n 16 (byte compare) t=$(( $(date +%s) - T0 ))"
  for v in old $EV; do
    env $(venv $v) timeout 45 $B/bin/engine run /tmp/$s "$PROMPT" --raw -n 16 --temperature 0 --backend vulkan > $L/run_${s}_$v.txt 2> $L/run_${s}_$v.err
    echo "  $v rc=$? $(md5sum < $L/run_${s}_$v.txt | cut -c1-12)"
  done
  for v in $EV; do cmp -s $L/run_${s}_$v.txt $L/run_${s}_old.txt && echo "  $v same bytes" || echo "  $v DIFFER"; done
  order1="$O1"; order2="$O2"
  for r in 1 2 3; do
    [ $r = 3 ] && { [ "${ROUND:-1}" != 3 ] || [ $s != llama-3.1-8b ]; } && break
    [ $r = 2 ] && [ $s != llama-3.1-8b ] && [ "${ROUND:-1}" != 3 ] && break
    eval o=\$order$(( (r - 1) % 2 + 1 ))
    for v in $o; do left || break; echo "=== $s vulkan tg128 $v r$r"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2; done
  done
  if [ $s = llama-3.1-8b ]; then
    left && { echo "=== $s cuda tg128 (HEAD's plugin)"; eb old /tmp/$s --backend cuda -p 16 -n 128 -r 2; }
  fi
  echo "  t=$(( $(date +%s) - T0 )) s"
done
echo "=== suites (new plugin, the pick's knobs: ${PK:-none})"
if [ -n "${PK:-}" ] && left; then
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
