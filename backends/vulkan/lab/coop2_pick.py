"""Picks the cooperative-matrix GEMM choice from vulkan_gemm_lab rows (vk-coop2): the single
variant or the "A@T,B" rule (run_ops.cc PickCoopKernel) with the least total time over the
rows, among variants that passed every row. Prints the choice (empty if none) and, on stderr,
the per-row oracle and the top candidates."""
import re
import sys

TILES = {1: (128, 64), 2: (64, 128), 3: (128, 128), 4: (128, 128), 5: (64, 128), 6: (64, 64),
         7: (64, 256), 8: (64, 64), 9: (128, 128), 10: (128, 256), 11: (128, 128), 12: (64, 128),
         13: (128, 128), 14: (64, 128), 15: (64, 64), 16: (64, 128),
         17: (64, 128), 18: (64, 64)}  # vk-coop3
SHAPES = {"q/o 4096x4096": 4096, "k/v 1024x4096": 1024, "gate/up 14336x4096": 14336,
          "down 4096x14336": 4096, "q/o 2048x2048": 2048, "k/v 512x2048": 512,
          "gate/up 8192x2048": 8192, "down 2048x8192": 2048, "q/o 896x896": 896,
          "k/v 128x896": 128, "gate/up 4864x896": 4864, "down 896x4864": 896}
WEIGHT = {"q/o": 2, "k/v": 2, "gate/up": 2, "down": 1}  # MATMULs of the shape a layer


def main():
    rows = {}  # (M, shape) -> {variant: us}
    failed = set()
    for line in open(sys.argv[1]):
        m = re.match(r"^(8b|1b|05b)\s+(\d+) (.{20}) (\S+)\s+([\d.]+)\s+([\d.]+)", line)
        if not m:
            continue
        v, us = m.group(4), float(m.group(5)) + float(m.group(6))
        if "FAILED" in line or float(m.group(5)) <= 0:
            failed.add(v)
        rows.setdefault((int(m.group(2)), m.group(3).strip()), {})[v] = us
    good = sorted({v for r in rows.values() for v in r if v not in failed and v.isdigit()}, key=int)
    if not good or not rows:
        print("")
        return

    def groups(v, M, shape):
        bm, bn = TILES[int(v)]
        return -(-SHAPES[shape] // bn) * -(-M // bm)

    def total(choose):
        t = 0.0
        for (M, shape), r in rows.items():
            v = choose(M, shape)
            if v not in r:
                return float("inf")
            t += WEIGHT[shape.split()[0]] * r[v]
        return t

    cands = {v: total(lambda M, s, v=v: v) for v in good}
    for a in good:
        ts = sorted({groups(a, M, s) for (M, s) in rows})
        for b in good:
            for th in ts:
                rule = f"{a}@{th},{b}"
                cands[rule] = total(lambda M, s, a=a, b=b, th=th: a if groups(a, M, s) >= th else b)
    oracle = sum(WEIGHT[s.split()[0]] * min(r[v] for v in r if v in good) for (M, s), r in rows.items())
    best = sorted(cands, key=cands.get)
    print(f"oracle (best variant per row) {oracle:.0f} us; top:", ", ".join(
        f"{c}={cands[c]:.0f}" for c in best[:6]), file=sys.stderr)
    print(best[0])


main()
