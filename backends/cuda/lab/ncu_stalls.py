# Summary of `ncu --import X --page source --csv --print-source sass` (cu-dec18): warp stall
# samples by reason, by 64-instruction block of the SASS, and the top 20 instructions.
# Usage: python3 ncu_stalls.py SOURCE.csv
import csv, sys
rows=list(csv.reader(open(sys.argv[1])))
hdr=rows[1]; ix={h:i for i,h in enumerate(hdr)}
data=[r for r in rows[2:] if len(r)>=len(hdr)]
S='Warp Stall Sampling (All Samples)'
tot=sum(int(r[ix[S]] or 0) for r in data)
stalls=[h for h in hdr if h.startswith('stall_') and 'Not Issued' not in h]
print(f'# {rows[0][1][:140]}')
print(f'# warp stall samples {tot}; by reason:')
agg={s:sum(int(r[ix[s]] or 0) for r in data) for s in stalls}
for s,v in sorted(agg.items(), key=lambda x:-x[1])[:8]: print(f'#   {s:24s} {100*v/tot:5.1f}%')
print('# SASS in blocks of 64 instructions (offset, samples %, cumulative %, max executions, top opcodes)')
acc=0
for k in range(0,len(data),64):
    seg=data[k:k+64]; s=sum(int(r[ix[S]] or 0) for r in seg); acc+=s
    if s==0: continue
    ex=max(int(r[ix['Instructions Executed']] or 0) for r in seg)
    ops=[r[1].split()[1] if r[1].strip().startswith('@') else r[1].split()[0] for r in seg]
    top=sorted({o:ops.count(o) for o in set(ops)}.items(), key=lambda x:-x[1])[:4]
    print(f'{k:5d} {100*s/tot:5.1f}% cum {100*acc/tot:5.1f}% exec {ex:6d} {top}')
print('# top 20 instructions')
for r in sorted(data, key=lambda r:-int(r[ix[S]] or 0))[:20]:
    n=int(r[ix[S]]); main=sorted(((int(r[ix[s]] or 0), s) for s in stalls), reverse=True)[:2]
    print(f'{100*n/tot:5.1f}% {r[0][-5:]} {r[1].strip()[:56]:56s} exec={r[ix["Instructions Executed"]]} {main}')
