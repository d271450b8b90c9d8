#!/bin/bash
# vk-qkv (twelfth session): the norm-fused decode GEMVs (q/k/v) with K split within the workgroup
# (the _kp modules) and o's kernel, on the H100, one call from the repo root, carrying
# .dev/vk-qkv/bundle.tar.gz (the bundle of a build of HEAD + this work, with the stripped test
# binaries and vulkan_gemv_lab; old/ = HEAD's Vulkan plugin, .dev/old12) and .gl (glvnd debs).
# Order: checkpoints in the background; the lab (`--glu --rope`: gate/up and q/k/v on the paired
# modules the engine runs; HEAD's outputs dumped, every configuration checked bit for bit
# against them, us a dispatch, interleaved configurations); the pick per model; the suites
# with the new modules forced; engine tg128 old vs new (the pick) interleaved; CUDA 8B once.
# ROUND=1 (default; call 1): that sweep. ROUND=3 (call 3): the norm prologue's L2 warm-up
# (TESSERA_VULKAN_NORM_WARM) in the lab. ROUND=2 (call 2): the final defaults only: the lab on the
# 8B shapes (old vs new, same bits), the suites, engine tg128 old vs new (1B and 0.5B while the
# 8B checkpoint is made, then 8B twice) and CUDA 8B. The _kp modules (nk2, nk2r2) were taken out
# after call 1 (results/qkv12_norm_kpieces_not_kept.diff has them), the warm-up after call 3
# (results/qkv12_norm_warm_not_kept.diff): with the tree as it is, ROUND=1 / 3 run their knobs'
# configurations on the default kernels. README, vk-qkv section.
# Steps stop starting past $DEADLINE s.
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=${DEADLINE:-170}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
tar xzf .dev/vk-qkv/bundle.tar.gz -C .dev/vk-qkv
B=$PWD/.dev/vk-qkv/bundle; export LD_LIBRARY_PATH=$B/lib; P=$B/lib/tessera/backends
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
(for s in $([ "${ROUND:-1}" = 2 ] && echo qwen2.5-0.5b llama-3.2-1b llama-3.1-8b || echo llama-3.1-8b llama-3.2-1b qwen2.5-0.5b); do [ -f /tmp/$s.done ] || { python3 bench/make_checkpoint.py --shape $s --out /tmp/$s > /dev/null 2>&1; touch /tmp/$s.done; }; done) &
for f in .gl/*.deb; do case $f in *libvulkan1*) ;; *) dpkg -x "$f" / ;; esac; done; ldconfig
$B/bin/engine devices 2>&1 | grep -q "vulkan:0" || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$B/bin/engine devices 2>&1 | grep vulkan
NEW=$P/libtessera_backend_vulkan.so OLD=$B/old/libtessera_backend_vulkan.so
V=TESSERA_VULKAN_
# "tag|env": nk2 = q/k/v and gate/up split in 2 pieces (the paired modules allow 2 with 4
# subgroups a workgroup); rows2 = 2 rows a subgroup everywhere (2x the workgroups); op1 = o on
# the skewed kernel unsplit; op2 = o on it split in 2 (and 0.5B down in 2 instead of 4);
# nk2r2 = nk2 with 2 rows a subgroup (q/k/v: 4x the workgroups).
CFGS=("def|" "nk2|${V}DECODE_NORM_KPIECES=2" "rows2|${V}DECODE_ROWS=2" "op1|${V}DECODE_SKEW_PLAIN=1"
      "op2|${V}DECODE_SKEW_PLAIN=1 ${V}DECODE_KPIECES=2" "nk2r2|${V}DECODE_NORM_KPIECES=2 ${V}DECODE_ROWS=2")
lab() { local tag=$1 so=$2; shift 2
  env "$@" TESSERA_VULKAN_PLUGIN=$so timeout 60 $B/bin/vulkan_gemv_lab --reps 100 --glu --rope \
    $([ $tag = old ] && echo --dump /tmp/old.bin || echo --check /tmp/old.bin) > $OUT/lab_$tag.log 2>&1
  echo "--- lab $tag ($*) rc=$?"; grep -E "us/dispatch|same bits|FAIL|PASSED" $OUT/lab_$tag.log |
    sed -E 's/ +dispatches.* ([0-9.]+) us\/dispatch +([0-9.]+) GB\/s +([0-9.]+) of copy.*\((.*)\)$/ \1 us \3 [\4]/'; }
if [ "${ROUND:-1}" = 3 ]; then
  # The RMS_NORM prologue's L2 warm-up (TESSERA_VULKAN_NORM_WARM = steps), 8B and 1B shapes.
  echo "=== lab, L2 warm-up before the norm prologue (us a dispatch, fraction of copy)"
  lab() { local tag=$1 so=$2; shift 2
    env "$@" TESSERA_VULKAN_PLUGIN=$so timeout 40 $B/bin/vulkan_gemv_lab --reps 100 --glu --rope --shapes ${SHAPES:-8b,1b} \
      $([ $tag = old ] && echo --dump /tmp/old.bin || echo --check /tmp/old.bin) > $OUT/lab_$tag.log 2>&1
    echo "--- lab $tag rc=$?"; grep -E "us/dispatch|same bits|FAIL" $OUT/lab_$tag.log | cut -c1-110; }
  lab old $OLD
  for w in 0 2 4 1 0b 4b 2b; do left && lab w$w $NEW ${V}NORM_WARM=${w%b}; done
  echo "total $(( $(date +%s) - T0 )) s"
  exit 0
fi
if [ "${ROUND:-1}" = 2 ]; then
  echo "=== lab, 8B shapes (us a dispatch, fraction of copy)"
  lab() { local tag=$1 so=$2; shift 2
    env "$@" TESSERA_VULKAN_PLUGIN=$so timeout 60 $B/bin/vulkan_gemv_lab --reps 100 --glu --rope --shapes 8b \
      $([ $tag = old ] && echo --dump /tmp/old.bin || echo --check /tmp/old.bin) > $OUT/lab_$tag.log 2>&1
    echo "--- lab $tag rc=$?"; grep -E "us/dispatch|same bits|FAIL" $OUT/lab_$tag.log | cut -c1-140; }
  lab old $OLD; lab new $NEW; lab old2 $OLD; lab new2 $NEW
  # The GEMVs without the RMS_NORM prologue (the norm its own dispatch, not timed here; the
  # skewed kernel for the plain groups): what the per-workgroup prologue costs.
  lab noprol $NEW ${V}FUSE_NORM=0 ${V}DECODE_SKEW_PLAIN=1
  echo "=== suites (defaults)"
  env TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter=-*Coop* 2>&1 |
    grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" | head -6 | sed "s/^/  [unit] /"
  env TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 2>&1 |
    grep -E "^\[  (PASSED|FAILED) |FAILED TEST" | head -4 | sed "s/^/  [conformance] /"
  env TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
    timeout 60 $B/bin/text_golden_test --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED) |FAILED TEST" | head -4 | sed "s/^/  [golden] /"
  echo "suites done $(( $(date +%s) - T0 )) s"
  eb() { local bp=; [ $1 = old ] && bp=$B/old; shift
    env TESSERA_BACKEND_PATH=$bp timeout 60 $B/bin/engine bench "$@" 2>&1 | grep -E "\| tg[0-9]|rror" | sed 's/^/    /'; }
  for s in qwen2.5-0.5b llama-3.2-1b llama-3.1-8b; do
    while [ ! -f /tmp/$s.done ]; do sleep 1; done
    for r in 1 2; do
      left || break
      [ $r = 2 ] && [ $s != llama-3.1-8b ] && break
      for v in old new; do echo "=== $s vulkan tg128 $v r$r"; eb $v /tmp/$s --backend vulkan -p 16 -n 128 -r 3; done
    done
    echo "  t=$(( $(date +%s) - T0 )) s"
  done
  left && { echo "=== llama-3.1-8b cuda tg128"; eb new /tmp/llama-3.1-8b --backend cuda -p 16 -n 128 -r 3; }
  echo "total $(( $(date +%s) - T0 )) s"
  exit 0
fi
echo "=== lab (us a dispatch, fraction of copy)"
lab old $OLD
for c in "${CFGS[@]}"; do IFS='|' read -r tag kn <<< "$c"; lab $tag $NEW $kn; done
# Second round of the two that matter (noise), nk2 with the driver's statistics.
left && lab nk2b $NEW ${V}DECODE_NORM_KPIECES=2 ${V}PIPELINE_STATS=1
left && lab defb $NEW
grep -h "pipeline stats" $OUT/lab_nk2b.log | grep "matmul.comp" | sort -u | cut -c1-400 > $OUT/pipeline_stats.log
echo "lab done $(( $(date +%s) - T0 )) s"
# Per model: q/k/v and gate/up each split or not (the lower mean of def/defb vs nk2/nk2b) ->
# DECODE_NORM_KPIECES=0 with DECODE_NORM_KP_GROUPS = gate/up's workgroups (q/k/v split only),
# a large value (both), or DECODE_NORM_KPIECES=1; o: op1 where it beat def.
python3 - $OUT > /tmp/pick.env <<'EOF2'
import re, sys
t = {}
for tag in ("def", "defb", "nk2", "nk2b", "op1"):
    try:
        for line in open(f"{sys.argv[1]}/lab_{tag}.log"):
            m = re.match(r"(\S+)\s+(\S+).*?\s+\d+ dispatches\s+([0-9.]+) us/dispatch", line)
            if m: t.setdefault((tag.rstrip("b") if tag != "defb" else "def", m.group(1), m.group(2)), []).append(float(m.group(3)))
    except OSError: pass
mean = lambda k: sum(t[k]) / len(t[k]) if k in t else 1e9
gu = {"8b": 1792, "1b": 1024, "05b": 608}
for model in ("8b", "1b", "05b"):
    q = mean(("nk2", model, "qkv")) < mean(("def", model, "qkv"))
    g = mean(("nk2", model, "gate/up")) < mean(("def", model, "gate/up"))
    env = f"TESSERA_VULKAN_DECODE_NORM_KPIECES=0 TESSERA_VULKAN_DECODE_NORM_KP_GROUPS={10**9 if g else gu[model]}" if q else \
          ("TESSERA_VULKAN_DECODE_NORM_KPIECES=2" if g else "TESSERA_VULKAN_DECODE_NORM_KPIECES=1")
    if mean(("op1", model, "o")) < mean(("def", model, "o")): env += " TESSERA_VULKAN_DECODE_SKEW_PLAIN=1"
    print(f"PICK_{model}='{env}'  # qkv split {q}, gate/up split {g}")
EOF2
cat /tmp/pick.env; . /tmp/pick.env
echo "=== suites: the new modules forced (DECODE_NORM_KPIECES=2), then the 8B pick"
F="${V}DECODE_NORM_KPIECES=2"
left && env $F TESSERA_VULKAN_PLUGIN=$NEW timeout 60 $B/bin/vulkan_backend_test --gtest_brief=1 --gtest_filter=*Decode*:*Matmul*:*Grouped*:*Epilogue*:*Norm* 2>&1 |
    grep -E "^\[ +(PASSED|FAILED|SKIPPED) |Failure" | head -6 | sed "s/^/  [unit $F] /"
left && { env $F TESSERA_CONFORMANCE_PLUGINS=$NEW timeout 60 $B/bin/op_conformance_test --gtest_brief=1 > $OUT/conformance.log 2>&1
  grep -E "^\[  (PASSED|FAILED) |FAILED TEST" $OUT/conformance.log | head -4 | sed "s/^/  [conformance $F] /"
  env $F TESSERA_MODEL_FIXTURES=$PWD/tests/fixtures/models TESSERA_TEST_BACKEND=vulkan TESSERA_TEST_PLUGINS=$NEW:$P/libtessera_backend_cpu.so \
    timeout 60 $B/bin/text_golden_test --gtest_brief=1 2>&1 | grep -E "^\[  (PASSED|FAILED) |FAILED TEST" | head -4 | sed "s/^/  [golden $F] /"; }
echo "suites done $(( $(date +%s) - T0 )) s"
# HEAD's plugin through TESSERA_BACKEND_PATH (searched before the bundle's own folder).
eb() { local bp=; [ $1 = old ] && bp=$B/old; shift
  env TESSERA_BACKEND_PATH=$bp timeout 60 $B/bin/engine bench "$@" 2>&1 | grep -E "\| (pp|tg)[0-9]|rror" | sed 's/^/    /'; }
for s in llama-3.1-8b llama-3.2-1b qwen2.5-0.5b; do
  while [ ! -f /tmp/$s.done ]; do sleep 1; done
  case $s in llama-3.1-8b) k=$PICK_8b;; llama-3.2-1b) k=$PICK_1b;; *) k=$PICK_05b;; esac
  for r in 1 2; do
    left || break
    [ $r = 2 ] && [ $s != llama-3.1-8b ] && break
    echo "=== $s vulkan tg128 old r$r"; eb old /tmp/$s --backend vulkan -p 16 -n 128 -r 3
    echo "=== $s vulkan tg128 new ($k) r$r"; ( export ${k%%#*}; eb new /tmp/$s --backend vulkan -p 16 -n 128 -r 3 )
  done
  [ $s = llama-3.1-8b ] && left && { echo "=== $s cuda tg128"; eb new /tmp/$s --backend cuda -p 16 -n 128 -r 3; }
  echo "  t=$(( $(date +%s) - T0 )) s"
done
echo "total $(( $(date +%s) - T0 )) s"
