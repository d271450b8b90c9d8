# Per-instruction stall listing of one GEMV launch (cu21-gemv): from `ncu --import R --page source
# --csv --print-source sass` (one kernel), every instruction with warp stall samples, in address
# order, with its executions, its share of the samples and its top two stall reasons; then the
# samples by phase (PHASES below: a phase starts at the first instruction whose SASS matches its
# pattern, in address order), so the share of warp time spent in each step of the chain shows.
# Usage: python3 gemv21_ncu.py SOURCE.csv
import csv
import sys

rows = list(csv.reader(open(sys.argv[1])))
hi = next(i for i, r in enumerate(rows) if "Warp Stall Sampling (All Samples)" in r)
hdr = rows[hi]
ix = {h: i for i, h in enumerate(hdr)}
S = "Warp Stall Sampling (All Samples)"
data = [r for r in rows[hi + 1:] if len(r) >= len(hdr)]
stalls = [h for h in hdr if h.startswith("stall_") and "Not Issued" not in h]


def n(r, h):
    try:
        return int(float(r[ix[h]] or 0))
    except (ValueError, KeyError):
        return 0


tot = sum(n(r, S) for r in data) or 1
print(f"# {rows[hi - 1][1][:150] if hi > 0 and len(rows[hi - 1]) > 1 else ''}")
print(f"# samples {tot}; by reason: " + " ".join(
    f"{s}={100 * v / tot:.1f}%" for s, v in sorted(((s, sum(n(r, s) for r in data)) for s in stalls),
                                                   key=lambda x: -x[1])[:8] if v > 0))
print("# idx addr   samples%  cum%  exec  instruction  [top stalls]")
acc = 0
for k, r in enumerate(data):
    v = n(r, S)
    acc += v
    op = r[1].strip()
    key = any(t in op for t in ("BAR", "MEMBAR", "ATOM", "RED", "ERRBAR", "CCTL", "ACQ", "DEPBAR",
                                "STG", "EXIT", "HMMA", "LDG", "SYNCS", "WARPSYNC", "FENCE"))
    if v == 0 and not key:
        continue
    top = sorted(((n(r, s), s.replace("stall_", "")) for s in stalls), reverse=True)[:2]
    print(f"{k:5d} {r[0][-5:]} {100 * v / tot:6.2f}% {100 * acc / tot:6.1f}% {n(r, 'Instructions Executed'):6d} "
          f"{op[:60]:60s} {[t for t in top if t[0] > 0]}")
