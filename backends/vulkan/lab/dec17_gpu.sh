#!/bin/bash
# vk-dec17 (seventeenth session). The norm-fused decode groups (skew+norm and skew+norm+pair
# modules) on persistent workgroups (matmul.comp NormGroups: TESSERA_VULKAN_PERSIST=N launches at
# most N workgroups, each computes the RMS_NORM scale once and takes workgroup indices g, g + N,
# ...) and the first steps' weights touched before the prologue (TESSERA_VULKAN_PRELOAD=1|2).
# The record of call 1 (README vk-dec17): its plugin was built with
# results/dec17_preload_not_kept.diff (persistence, off by default then, + PRELOAD). The tree
# keeps the persistence only, on by default on the H100 (3 workgroups an SM = 396): rerun with
# this tree, "def" is that default, PRELOAD does nothing, and TESSERA_VULKAN_PERSIST=0 is old's code.
# On the H100, in ONE call from the repo root, carrying .dev/vk-dec17/bundle.tar.xz (bin/ engine,
# vulkan_gemv_lab, vulkan_backend_test, op_conformance_test, text_golden_test; lib/ core,
# libstdc++, libvulkan, the new vulkan + cpu plugins), .dev/old17.tar.xz (HEAD c4c4067's
# stripped engine + plugins: old/), .gl (glvnd) and this script (.dev/vk-dec17/dec17_gpu.sh).
# 1. lab `vulkan_gemv_lab --reps 100 --glu --rope` + PIPELINE_STATS=1: old (HEAD's plugin, outputs
#    dumped) / def / p / t1 / pt1 / pt2 / q (PERSIST=264 PRELOAD=1), checked bit for bit against
#    old, 8B + 1B; round 2: the two best and old again;
# 2. engine: greedy -n 16 byte compare old / pick (8B, 1B); tg128 (-p 16 -n 128 -r 2) old / pick
#    interleaved (old pick pick old), 8B and 1B; CUDA 8B once (HEAD's plugin);
# 3. vulkan_backend_test (decode / norm / epilogue cases), op conformance, golden with the pick.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/dec17logs; mkdir -p $L  # every log, tarred into $OUT/logs.tgz
trap 'tar czf $OUT/logs.tgz -C /tmp dec17logs' EXIT
T0=$(date +%s); DEADLINE=${DEADLINE:-190}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
SHAPES=${SHAPES:-"llama-3.1-8b llama-3.2-1b"}
for s in $SHAPES; do rm -f /tmp/$s.done; done
(for s in $SHAPES; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done; done) &
mkdir -p .dev/vk-dec17; tar xJf .dev/vk-dec17/bundle.tar.xz -C .dev/vk-dec17
B=$PWD/.dev/vk-dec17/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p $B/old && tar xJf .dev/old17.tar.xz -C $B/old
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
V=TESSERA_VULKAN_
declare -A KN=([old]="" [def]="" [p]="${V}PERSIST=396" [t1]="${V}PRELOAD=1"
  [pt1]="${V}PERSIST=396 ${V}PRELOAD=1" [pt2]="${V}PERSIST=396 ${V}PRELOAD=2"
  [q]="${V}PERSIST=264 ${V}PRELOAD=1")
lab() { local tag=$1 run=$2 sh=$3; local so=$NEW a="--check /tmp/old.bin"
  case $tag in old) so=$OLD; a=; [ $run = 1 ] && a="--dump /tmp/old.bin";; esac
  env ${KN[$tag]} ${V}PIPELINE_STATS=1 TESSERA_VULKAN_PLUGIN=$so timeout 60 $B/bin/vulkan_gemv_lab \
    --reps 100 --glu --rope --shapes $sh $a > $L/lab_${tag}_$run.log 2>&1
  echo "--- $tag r$run (${KN[$tag]}) rc=$? t=$(( $(date +%s) - T0 ))"
  grep -E "us/dispatch|same bits|also" $L/lab_${tag}_$run.log |
    sed -E 's/ +[0-9]+ dispatches +([0-9.]+) us\/dispatch +[0-9.]+ GB\/s +([0-9.]+) of copy.*; (.*)\)$/ \1 us \2 [\3]/' | cut -c1-120
  grep "pipeline stats matmul.comp skew" $L/lab_${tag}_$run.log | sort -u |
    sed -E 's/.*stats (matmul[^[]*).*(Register Count=[0-9]+), (Binary Size=[0-9]+).*(Shared Memory Size=[0-9]+).*/    \1 \2 \3 \4/'; }
summary() {
python3 - $L <<'PY'
import re, sys, glob, os, collections
t = collections.defaultdict(list); bad = set()
for f in sorted(glob.glob(f"{sys.argv[1]}/lab_*.log")):
    tag = os.path.basename(f)[4:-4].rsplit("_", 1)[0]
    txt = open(f).read()
    if tag != "old" and not re.search(r"same bits as \S+: 0 of \d+ outputs differ", txt): bad.add(tag)
    for line in txt.splitlines():
        m = re.match(r"(\w+)\s+(\S+).*?\s([0-9.]+) us/dispatch", line)
        if m: t[(tag, m.group(1), m.group(2))].append(float(m.group(3)))
tags = [g for g in ["old", "def", "p", "t1", "pt1", "pt2", "q"] if any(k[0] == g for k in t)]
shapes = sorted({(k[1], k[2]) for k in t}, key=lambda s: (s[0] != "8b", s[1]))
print("shape".ljust(12) + "".join(x.rjust(12) for x in tags))
for s in shapes:
    row = f"{s[0]} {s[1]}".ljust(12)
    for g in tags:
        v = t.get((g, s[0], s[1]))
        row += (f"{sum(v)/len(v):.2f}({len(v)})" if v else "-").rjust(12)
    print(row)
lay = {}
for sh in ("8b", "1b"):
    d = {}
    for g in tags:
        parts = [t.get((g, sh, n)) for n in ["qkv", "gate/up"]]
        if all(parts): d[g] = sum(sum(v) / len(v) for v in parts)
    lay[sh] = d
    base = d.get("old", 0)
    print(sh, "q/k/v + gate/up:", {g: f"{v:.2f} ({v - base:+.2f})" for g, v in d.items()})
print("differing:", sorted(bad) or "none")
c = {g: v for g, v in lay["8b"].items() if g not in ("old", "def") and g not in bad}
rank = sorted(c, key=c.get)
print("rank", rank)
open("/tmp/rank", "w").write(" ".join(rank))
PY
}
echo "=== lab round 1"
for tag in old def p t1 pt1 pt2 q; do left && lab $tag 1 8b,1b; done
summary
R=($(cat /tmp/rank)); PK=${R[0]:-pt1}
echo "=== lab round 2"
for tag in ${R[1]:-p} $PK old def; do left && lab $tag 2 8b,1b; done
summary
R=($(cat /tmp/rank)); PK=${R[0]:-pt1}
echo "  t=$(( $(date +%s) - T0 )) s"
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; *) echo TESSERA_NOTHING=1 ${KN[$1]};; esac; }
echo "=== engine pick: $PK (${KN[$PK]})"
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
  for v in old $PK $PK old; do
    left || break; echo "=== $s vulkan tg128 $v"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 2
  done
  if [ $s = llama-3.1-8b ]; then
    left && { echo "=== $s cuda tg128 (HEAD's plugin)"; eb old /tmp/$s --backend cuda -p 16 -n 128 -r 2; }
  fi
  echo "  t=$(( $(date +%s) - T0 )) s"
done
echo "=== suites (new plugin, ${KN[$PK]})"
if [ $(( $(date +%s) - T0 )) -lt $(( DEADLINE + 40 )) ]; then
  env ${KN[$PK]} TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 \
    --gtest_filter='*Decode*:*Epilogue*:*Norm*:*Grouped*' > $L/vk_unit.log 2>&1; echo "unit rc=$?"
  grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/vk_unit.log | head -6
  # Small shapes have fewer workgroups than 396: 2 persistent workgroups loop over all of them.
  env ${V}PERSIST=2 ${V}PRELOAD=2 TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 \
    --gtest_filter='*Decode*:*Epilogue*:*Norm*:*Grouped*' > $L/vk_unit_p2.log 2>&1; echo "unit PERSIST=2 PRELOAD=2 rc=$?"
  grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/vk_unit_p2.log | head -6
  env ${KN[$PK]} TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1; echo "conformance rc=$?"
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_conf.log | head -4
  env ${KN[$PK]} TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
    timeout 50 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1; echo "golden rc=$?"
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_golden.log | head -4
fi
echo "total $(( $(date +%s) - T0 )) s"
