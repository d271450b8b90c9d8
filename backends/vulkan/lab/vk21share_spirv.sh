#!/bin/bash
# vk21-share: does a shader refactor change the code of a module? Compiles attention.comp,
# rope.comp and rows.comp's modules as CMakeLists.txt does (glslc -O) from two shader folders
# (old, new) and compares each module's function bodies, disassembled (spirv-dis) without debug
# names: (1) line by line after naming globals by their definitions and locals by first use
# ("lines differ": 0 = the same code, the same order); (2) as multisets of instructions named by
# iterated hashing of their operands, phi operands unordered, labels anonymous ("instrs only
# old / only new": 0 / 0 = the same instructions, at most blocks or phi nodes in another order).
# Usage: backends/vulkan/lab/vk21share_spirv.sh OLD_SHADER_DIR NEW_SHADER_DIR
# (SPIRV_DIS: spirv-dis, from the spirv-tools package.)
set -eu
OLD=$1 NEW=$2
DIS=${SPIRV_DIS:-spirv-dis}
W=$(mktemp -d); trap 'rm -rf $W' EXIT
cat > $W/canon.py <<'PY'
import collections, hashlib, re, sys
def body(path):  # function bodies; globals named by their definitions, locals by first use
    glob, out, infn = {}, [], False
    for s in (l.strip() for l in open(path)):
        if re.search(r'(^| )OpFunction ', s): infn = True
        if infn: out.append(s)
        elif ' = ' in s: k, v = s.split(' = ', 1); glob[k] = v
        if s == 'OpFunctionEnd': infn = False
    memo = {}
    def g(k, depth=0):
        if k in memo: return memo[k]
        if depth > 20 or k not in glob: return k
        memo[k] = '<rec>'
        memo[k] = '[' + re.sub(r'%\d+', lambda m: g(m.group(0), depth + 1), glob[k]) + ']'
        return memo[k]
    loc = {}
    def n(m):
        k = m.group(0)
        if k in glob: return g(k)
        return loc.setdefault(k, '%%L%d' % len(loc))
    return [re.sub(r'%\d+', n, s) for s in out]
def bag(lines, iters=6):  # instructions named by iterated hashing, labels anonymous
    ins = [tuple(s.split(' = ', 1)) if s.startswith('%L') and ' = ' in s else (None, s) for s in lines]
    labels = {d for d, r in ins if r.startswith('OpLabel')}
    def text(r, nm):
        t = re.sub(r'%L\d+', lambda m: 'LBL' if m.group(0) in labels else nm.get(m.group(0), '?'), r)
        if r.startswith('OpPhi'): p = t.split(); t = ' '.join(p[:2] + sorted(p[2:]))
        return t
    nm = {d: 'x' for d, r in ins if d}
    for _ in range(iters):
        nm = {d: hashlib.md5(text(r, nm).encode()).hexdigest()[:12] for d, r in ins if d}
    return collections.Counter(text(r, nm) for d, r in ins)
a, b = body(sys.argv[1]), body(sys.argv[2])
diff = sum(1 for x, y in zip(a, b) if x != y) + abs(len(a) - len(b))
ba, bb = bag(a), bag(b)
print('lines %d / %d, lines differ %d, instrs only old %d / only new %d' %
      (len(a), len(b), diff, sum((ba - bb).values()), sum((bb - ba).values())))
PY
while IFS='|' read name src defs; do
  for side in old new; do
    dir=$OLD; [ $side = new ] && dir=$NEW
    glslc --target-env=vulkan1.2 -O -fshader-stage=compute -I $dir $defs -o $W/$side.spv $dir/$src
    $DIS --raw-id --no-header $W/$side.spv |
      grep -v -E '^\s*(OpName|OpMemberName|OpSource|OpString|OpLine|OpModuleProcessed)' > $W/$side.dis
  done
  printf '%-26s bytes %6d -> %6d  %s\n' $name $(stat -c %s $W/old.spv) $(stat -c %s $W/new.spv) \
    "$(python3 $W/canon.py $W/old.dis $W/new.dis)"
done <<'L'
attention|attention.comp|
attention_split|attention.comp|-DSPLIT=1
attention_f32_d64|attention.comp|-DFIXD=64
attention_f32_d128|attention.comp|-DFIXD=128
attention_split_f32_d64|attention.comp|-DSPLIT=1 -DFIXD=64
attention_split_f32_d128|attention.comp|-DSPLIT=1 -DFIXD=128
rope|rope.comp|
rope_kv_f32|rope.comp|-DKVF32=1
rows|rows.comp|
L
