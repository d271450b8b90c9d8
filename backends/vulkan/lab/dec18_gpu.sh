#!/bin/bash
# vk-dec18 (eighteenth session). (1) The per-dispatch picture of a Llama-3.1-8B decode layer and
# its LM head against a plain read of the same bytes: `vulkan_gemv_lab` with
# TESSERA_VULKAN_LAB_READ=G (every decode GEMV dispatch replaced by l2_warm.comp reading its
# weights with G workgroups of 256: WRONG outputs, a bound), the new `lm8b` shape (final norm +
# 128256 x 4096 LM head), and the persistent groups' round robin at other sizes (PERSIST=359:
# 1792 indices in 5 even rounds; 264: 2 an SM). (2) The barriers between compute dispatches
# without the transfer stage (plugin.cc RecordBarrier / PrepareTransfer, the default of call 1's
# plugin; TESSERA_VULKAN_BARRIER_ALL=1 = as before): lab + engine tg128 old / new interleaved,
# CUDA 8B. (2) did not pay and is NOT in the tree (results/dec18_compute_barriers_not_kept.diff):
# with the tree's plugin "def" is HEAD's code and "ball" does nothing. Call 1's record:
# results/dec18/call1/ (README vk-dec18).
# On the H100, in ONE call from the repo root, carrying .dev/vk-dec18/bundle.tar.xz (bin/ engine,
# vulkan_gemv_lab, vulkan_backend_test, op_conformance_test, text_golden_test; lib/ core,
# libstdc++, libvulkan, the new vulkan + cpu plugins), .dev/old18.tar.xz (HEAD 0a00b9a's stripped
# engine + plugins: old/), .gl (glvnd) and this script (.dev/vk-dec18/dec18_gpu.sh).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
L=/tmp/dec18logs; mkdir -p $L  # every log, tarred into $OUT/logs.tgz
trap 'tar czf $OUT/logs.tgz -C /tmp dec18logs' EXIT
T0=$(date +%s); DEADLINE=${DEADLINE:-185}
el() { echo $(( $(date +%s) - T0 )); }
left() { [ $(el) -lt $DEADLINE ]; }
SHAPES=${SHAPES:-"llama-3.1-8b llama-3.2-1b"}
for s in $SHAPES; do rm -f /tmp/$s.done; done
(for s in $SHAPES; do python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /tmp/$s.ckpt.log 2>&1; touch /tmp/$s.done; done) &
mkdir -p .dev/vk-dec18; tar xJf .dev/vk-dec18/bundle.tar.xz -C .dev/vk-dec18
B=$PWD/.dev/vk-dec18/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
mkdir -p $B/old && tar xJf .dev/old18.tar.xz -C $B/old
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
V=TESSERA_VULKAN_
declare -A KN=([old]="" [def]="" [ball]="${V}BARRIER_ALL=1" [rd]="${V}LAB_READ=1056"
  [rdh]="${V}LAB_READ=528" [p359]="${V}PERSIST=359" [p264]="${V}PERSIST=264")
# lab TAG RUN SHAPES DUMPFILE: old's first run of a shape set dumps, every other same-bits run
# checks (the read bounds' outputs are wrong by design: not checked).
lab() { local tag=$1 run=$2 sh=$3 ref=$4; local so=$NEW a="--check $ref"
  case $tag in old) so=$OLD; a=; [ $run = 1 ] && a="--dump $ref";; rd*) a=;; esac
  env ${KN[$tag]} ${V}PIPELINE_STATS=1 TESSERA_VULKAN_PLUGIN=$so timeout 90 $B/bin/vulkan_gemv_lab \
    --reps 100 --glu --rope --shapes $sh $a > $L/lab_${tag}_${sh/,/}_$run.log 2>&1
  echo "--- $tag $sh r$run (${KN[$tag]}) rc=$? t=$(el)"
  grep -E "us/dispatch|same bits|also" $L/lab_${tag}_${sh/,/}_$run.log |
    sed -E 's/ +[0-9]+ dispatches +([0-9.]+) us\/dispatch +[0-9.]+ GB\/s +([0-9.]+) of copy.*; (.*)\)$/ \1 us \2 [\3]/' | cut -c1-120
  grep "pipeline stats matmul.comp skew" $L/lab_${tag}_${sh/,/}_$run.log | sort -u |
    sed -E 's/.*stats (matmul[^[]*).*(Register Count=[0-9]+), (Binary Size=[0-9]+).*(Shared Memory Size=[0-9]+).*/    \1 \2 \3 \4/'; }
summary() {
python3 - $L <<'PY'
import re, sys, glob, os, collections
t = collections.defaultdict(list); bad = set()
for f in sorted(glob.glob(f"{sys.argv[1]}/lab_*.log")):
    tag = os.path.basename(f)[4:].split("_")[0]
    txt = open(f).read()
    if tag not in ("old", "rd", "rdh") and not re.search(r"same bits as \S+: 0 of \d+ outputs differ", txt): bad.add(tag)
    for line in txt.splitlines():
        m = re.match(r"(\w+)\s+(\S+).*?\s([0-9.]+) us/dispatch", line)
        if m: t[(tag, m.group(1), m.group(2))].append(float(m.group(3)))
tags = [g for g in ["old", "def", "ball", "rd", "rdh", "p359", "p264"] if any(k[0] == g for k in t)]
shapes = sorted({(k[1], k[2]) for k in t}, key=lambda s: (s[0] != "8b", s[0], s[1]))
print("shape".ljust(12) + "".join(x.rjust(12) for x in tags))
for s in shapes:
    row = f"{s[0]} {s[1]}".ljust(12)
    for g in tags:
        v = t.get((g, s[0], s[1]))
        row += (f"{sum(v)/len(v):.2f}({len(v)})" if v else "-").rjust(12)
    print(row)
print("differing:", sorted(bad) or "none")
PY
}
echo "=== lab round 1 t=$(el)"
for tag in old def ball rd p359 p264; do left && lab $tag 1 8b,1b /tmp/old.bin; done
echo "=== lab LM head t=$(el)"
for tag in old rd; do left && lab $tag 1 lm8b /tmp/oldlm.bin; done
echo "=== lab round 2 t=$(el)"
for tag in def old; do [ $(el) -lt 100 ] && lab $tag 2 8b,1b /tmp/old.bin; done
summary
venv() { case $1 in old) echo TESSERA_BACKEND_PATH=$B/old;; *) echo TESSERA_NOTHING=1 ${KN[$1]};; esac; }
PK=def
PROMPT="The capital of France is a city that has many old buildings and"
eb() { local v=$1; shift; env $(venv $v) timeout 60 $B/bin/engine bench "$@" 2>&1 | grep -E "\| tg[0-9]|rror" | sed 's/^/    /'; }
for s in $SHAPES; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  left || break
  echo "=== $s run -n 16 (byte compare) t=$(el)"
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
  echo "  t=$(el) s"
done
# The engine's own per-dispatch times on 8B (serialized by the timestamps), new plugin.
if left && [ -f /tmp/llama-3.1-8b.done ]; then
  env TESSERA_VULKAN_PROFILE=1 timeout 60 $B/bin/engine bench /tmp/llama-3.1-8b --backend vulkan -p 16 -n 32 -r 1 > $L/prof_def.log 2>&1
  echo "=== 8B PROFILE=1 def (tg32) rc=$?"; grep -E "calls|profile|barrier|sum of" $L/prof_def.log | head -24
fi
echo "=== suites (new plugin, defaults)"
if [ $(el) -lt $(( DEADLINE + 40 )) ]; then
  TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 \
    --gtest_filter='-*Coop*' > $L/vk_unit.log 2>&1; echo "unit rc=$?"
  grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" $L/vk_unit.log | head -6
  TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $L/vk_conf.log 2>&1; echo "conformance rc=$?"
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_conf.log | head -4
  TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
    timeout 50 $B/bin/text_golden_test --gtest_brief=1 > $L/vk_golden.log 2>&1; echo "golden rc=$?"
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $L/vk_golden.log | head -4
fi
echo "total $(el) s"
