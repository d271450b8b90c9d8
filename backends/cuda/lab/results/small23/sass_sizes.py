# cu23-small: per-kernel sm_90 .text bytes of the GemvBf16Kernel instantiations whose SASS differs
# between two objects (small22/sass_textcmp.py's reader, sizes added). Needs the zstd tool.
# Usage (repo root): python3 backends/cuda/lab/results/small23/sass_sizes.py OLD.o NEW.o
import os, re, sys
old, new = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
src = open(os.path.join(here, '..', 'small22', 'sass_textcmp.py')).read().split('a=texts')[0]
src = src.replace("out[key]=hashlib.md5(e[s[4]:s[4]+s[5]]).hexdigest()",
                  "out[key]=(hashlib.md5(e[s[4]:s[4]+s[5]]).hexdigest(), s[5])")
exec(src)
a = texts(old); b = texts(new)
print('kernels', len(a), len(b), 'same', sum(1 for k in a if k in b and a[k][0] == b[k][0]))
for k in a:
    if k in b and a[k][0] != b[k][0]:
        m = re.search(r'GemvBf16KernelILi(\d)ELb(\d)ELi(\d)ELb(\d)ELi(\d+)E', k)
        print('T,HALF,PRO,XP,PIPE', m.groups() if m else k[:60], a[k][1], '->', b[k][1],
              '%+d' % (b[k][1] - a[k][1]))
