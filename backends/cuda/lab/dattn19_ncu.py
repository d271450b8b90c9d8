# Summary of a several-kernel ncu report (cu-dattn19): from `ncu --import R --page raw --csv`,
# per kernel the duration, registers, grid and the warp stall samples by reason; from
# `--page source --csv --print-source sass` (one block per kernel), the top instructions by
# stall samples (cf. ncu_stalls.py, one kernel).
# Usage: python3 dattn19_ncu.py RAW.csv SOURCE.csv
import csv
import re
import sys


def short(name):
    m = re.search(r"Kernel<\(int\)(\d+), \(int\)1, \(int\)4, \(int\)8, \(int\)2, \(int\)0, \(int\)(\d+)>", name)
    return f"D={m.group(1)} OPT={m.group(2)}" if m else name[:60]


rows = list(csv.reader(open(sys.argv[1])))
hi = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
if hi is None:
    print("raw: no header;", [r[:4] for r in rows[:3]])
else:
    hdr = rows[hi]
    ix = {h: i for i, h in enumerate(hdr)}
    stalls = [h for h in hdr if h.startswith("smsp__pcsamp_warps_issue_stalled_") and "not_issued" not in h]

    def val(r, h):
        try:
            return float(r[ix[h]].replace(",", ""))
        except (KeyError, ValueError, IndexError):
            return float("nan")

    for r in rows[hi + 2:]:
        if len(r) < len(hdr):
            continue
        tot = sum(val(r, s) for s in stalls if val(r, s) == val(r, s))
        top = sorted(((val(r, s), s) for s in stalls), key=lambda x: -(x[0] if x[0] == x[0] else 0))[:7]
        print(f"{short(r[ix['Kernel Name']])} dur={r[ix.get('gpu__time_duration.sum', 0)]} "
              f"regs={r[ix.get('launch__registers_per_thread', 0)]} grid={r[ix.get('launch__grid_size', 0)]} "
              f"samples={tot:.0f}")
        print("    " + " ".join(f"{s.replace('smsp__pcsamp_warps_issue_stalled_', '')}={100 * v / tot:.0f}%"
                                 for v, s in top if tot > 0 and v == v and v > 0))

S = "Warp Stall Sampling (All Samples)"
src = list(csv.reader(open(sys.argv[2])))
heads = [i for i, r in enumerate(src) if S in r]
if not heads:
    print("source: no header;", [str(r)[:120] for r in src[:4]])
for bi, h in enumerate(heads):
    hdr = src[h]
    ix = {x: i for i, x in enumerate(hdr)}
    end = heads[bi + 1] - 1 if bi + 1 < len(heads) else len(src)
    data = [r for r in src[h + 1:end] if len(r) >= len(hdr)]
    title = src[h - 1][1] if h > 0 and len(src[h - 1]) > 1 else (src[h - 1][0] if h > 0 else "?")
    tot = sum(int(r[ix[S]] or 0) for r in data) or 1
    st = [x for x in hdr if x.startswith("stall_") and "Not Issued" not in x]
    print(f"# kernel {bi}: {short(title)}; {tot} samples; by reason: " +
          " ".join(f"{s}={100 * v / tot:.0f}%" for s, v in sorted(
              ((s, sum(int(r[ix[s]] or 0) for r in data)) for s in st), key=lambda x: -x[1])[:6]))
    for r in sorted(data, key=lambda r: -int(r[ix[S]] or 0))[:12]:
        n = int(r[ix[S]] or 0)
        main = sorted(((int(r[ix[s]] or 0), s) for s in st), reverse=True)[:2]
        print(f"  {100 * n / tot:5.1f}% {r[0][-5:]} {r[1].strip()[:50]:50s} exec={r[ix.get('Instructions Executed', 0)]} {main}")
