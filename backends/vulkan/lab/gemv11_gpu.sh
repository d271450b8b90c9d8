#!/bin/bash
# vk-gemv (eleventh session): decode GEMV experiments on the H100, one call from the repo root,
# carrying .dev/vk-gemv/bundle.tar.gz (the bundle of a build of HEAD + this work, with the
# stripped test binaries and vulkan_gemv_lab; old/ = HEAD's Vulkan plugin, build/perf's; the CUDA
# plugin in lib/tessera/backends) and .gl (glvnd debs). Order: checkpoints in the background (kept
# on a warm machine); the lab (HEAD's outputs dumped, every configuration checked bit for bit
# against them, us a dispatch); the Vulkan suites; engine tg128 new vs HEAD interleaved (new = the
# per-model best configuration of the lab, picked below); CUDA 8B once. ROUND=1: the RMS_NORM
# prologue's batched loads and 2 / 4 skewed chains a step (dropped since: their knobs are gone,
# so p2 / p4 now time the same kernels as p1 but for SKEW_PLAIN); ROUND=2: the K split
# within the workgroup for the plain GEMVs; ROUND=3: the defaults. README, vk-gemv section.
# Steps stop starting past $DEADLINE s.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-270}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
tar xzf .dev/vk-gemv/bundle.tar.gz -C .dev/vk-gemv
B=$PWD/.dev/vk-gemv/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
# (A warm machine may still hold them from an earlier call.)
(for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do [ -f /tmp/$s.done ] || { python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; }; done) &
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
lab() { local tag=$1 so=$2; shift 2
  env "$@" TESSERA_VULKAN_PLUGIN=$so timeout 60 $B/bin/vulkan_gemv_lab --reps ${REPS:-100} --glu \
    $([ $tag = old ] && echo --dump /tmp/old.bin || echo --check /tmp/old.bin) > $OUT/lab_$tag.log 2>&1
  echo "--- lab $tag ($*) rc=$?"; grep -E "us/dispatch|same bits|FAIL|PASSED" $OUT/lab_$tag.log |
    sed -E 's/ +dispatches.* ([0-9.]+) us\/dispatch +([0-9.]+) GB\/s +([0-9.]+) of copy.*\((.*)\)$/ \1 us \3 [\4]/'; }
V=TESSERA_VULKAN_
# Lab configurations "tag|knobs for the norm-fused dispatches|knobs for the plain ones" (the
# env of a run is both). ROUND=1 (call 1): pipelines; ROUND=2 (call 2): K split within the
# workgroup for the plain GEMVs (o, down), 1 or 4 pipelines; ROUND=3 (call 3): the final
# defaults (the split by shape) only.
if [ "${ROUND:-3}" = 3 ]; then
  CFGS=("def||")
elif [ "${ROUND:-3}" = 1 ]; then
  CFGS=("off|${V}NORM_BATCH=0|" "p1||" "p2|${V}DECODE_PIPES=2|${V}DECODE_SKEW_PLAIN=1 ${V}DECODE_PIPES_PLAIN=2"
        "p4|${V}DECODE_PIPES=4|${V}DECODE_SKEW_PLAIN=1 ${V}DECODE_PIPES_PLAIN=4")
else
  CFGS=("p1||" "k4||${V}DECODE_SKEW_PLAIN=1 ${V}DECODE_KPIECES=4" "k4p4||${V}DECODE_SKEW_PLAIN=1 ${V}DECODE_KPIECES=4 ${V}DECODE_PIPES_PLAIN=4"
        "k2||${V}DECODE_SKEW_PLAIN=1 ${V}DECODE_KPIECES=2")
fi
echo "=== lab (us a dispatch, fraction of copy)"
lab old $OLD
for c in "${CFGS[@]}"; do IFS='|' read -r tag kn kp <<< "$c"; lab $tag $NEW $kn $kp; done
echo "lab done $(( $(date +%s) - T0 )) s"
# Per model: the configuration whose norm shapes (resp. plain shapes) took least time in all;
# the pick's env = the norm winner's norm knobs + the plain winner's plain knobs.
printf '%s\n' "${CFGS[@]}" > /tmp/cfgs
python3 - $OUT > /tmp/pick.env <<'EOF2'
import re, sys
cfg = [l.rstrip("\n").split("|") for l in open("/tmp/cfgs") if l.strip()]
t = {}
for tag, _, _ in cfg:
    for line in open(f"{sys.argv[1]}/lab_{tag}.log"):
        m = re.match(r"(\S+)\s+(.*?)\s+\d+ dispatches\s+([0-9.]+) us/dispatch", line)
        if m:
            k = (tag, m.group(1), "norm" in m.group(2))
            t[k] = t.get(k, 0) + float(m.group(3))
for model in ("8b", "1b", "05b"):
    bn = min(cfg, key=lambda c: t.get((c[0], model, True), 1e9))
    bp = min(cfg, key=lambda c: t.get((c[0], model, False), 1e9))
    env = " ".join(x for x in (bn[1], bp[2]) if x) or "TESSERA_VULKAN_NORM_BATCH=1"
    print(f"PICK_{model}='{env}'  # norm {bn[0]}, plain {bp[0]}")
EOF2
cat /tmp/pick.env; . /tmp/pick.env
KN="$PICK_8b"  # the suites run the 8B pick
echo "=== vulkan_backend_test: defaults; the 8B pick; the plain kernel's every split (decode tests)"
left && env TESSERA_VULKAN_PLUGIN=$NEW timeout 90 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter=-*Coop* 2>&1 |
    grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" | head -6 | sed "s/^/  [defaults] /"
for k in "$KN" "${V}DECODE_SKEW_PLAIN=1 ${V}DECODE_KPIECES=4 ${V}DECODE_PIPES_PLAIN=4" "${V}DECODE_SKEW_PLAIN=1 ${V}DECODE_KPIECES=2"; do
  left && [ "${ROUND:-3}" != 3 ] || break
  env $k TESSERA_VULKAN_PLUGIN=$NEW timeout 90 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter=*Decode*:*Matmul*:*Grouped* 2>&1 |
    grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" | head -6 | sed "s/^/  [$k] /"
done
echo "=== conformance + golden ($KN)"
left && { env $KN TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/conformance.log 2>&1
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $OUT/conformance.log | head -4
  env $KN TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
    timeout 60 $B/bin/text_golden_test --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED) |FAILED TEST" | head -4; }
echo "suites done $(( $(date +%s) - T0 )) s"
# HEAD's plugin through TESSERA_BACKEND_PATH (searched before the bundle's own folder).
eb() { local bp=; [ $1 = old ] && bp=$B/old; shift
  env TESSERA_BACKEND_PATH=$bp timeout 100 $B/bin/engine bench "$@" 2>&1 | grep -E "\| (pp|tg)[0-9]|rror" | sed 's/^/    /'; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  case $s in llama-3.1-8b) k=$PICK_8b;; llama-3.2-1b) k=$PICK_1b;; *) k=$PICK_05b;; esac
  for r in 1 2; do
    left || break
    [ "${ROUND:-3}" = 3 ] && [ $r = 2 ] && [ $s != llama-3.1-8b ] && break
    echo "=== $s vulkan tg128 old r$r"; eb old /tmp/$s --backend vulkan -p 16 -n 128 -r 3
    echo "=== $s vulkan tg128 new ($k) r$r"; ( export ${k%%#*}; eb new /tmp/$s --backend vulkan -p 16 -n 128 -r 3 )
  done
  [ $s = llama-3.1-8b ] && { echo "    (old plugin check: $(TESSERA_BACKEND_PATH=$B/old $B/bin/engine devices -v 2>&1 | grep -m1 -o "[^ ]*old/libtessera_backend_vulkan.so[^ ]*"))"; }
  [ $s = llama-3.1-8b ] && left && { if [ "${ROUND:-3}" = 1 ]; then echo "=== $s vulkan tg128 new, knobs off (HEAD's kernels)"
    TESSERA_VULKAN_NORM_BATCH=0 eb new /tmp/$s --backend vulkan -p 16 -n 128 -r 3; fi
    [ "${ROUND:-3}" = 3 ] || { echo "=== $s cuda tg128"; eb new /tmp/$s --backend cuda -p 16 -n 128 -r 3; }; }
done
echo "total $(( $(date +%s) - T0 )) s"
