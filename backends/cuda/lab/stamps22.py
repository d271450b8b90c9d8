#!/usr/bin/env python3
"""cu22-small: summarize a TESSERA_GEMV_STAMP_OUT file (k_matmul_bf16.cu GemvStamp records of a
lab stamp build) into a per-launch timeline of the decode step.

Each record: one GemvBf16Kernel block, %globaltimer (ns) at entry (t0), after griddepcontrol.wait
(t1), after the prologue / x pre-split (t2) and after its last task (t3). A launch instance = the
blocks of one (weight, K, N, grid) whose t1 lie within 50 us. Per launch kind (the model's
decode GEMVs) it prints means over the last STEPS decode steps:
  gap   = release - the previous GEMV launch's end (the non-GEMV kernels between, + boundaries;
          the step's first launch apart: "step boundary")
  dur   = end - release (release = the earliest t1: the kernel before has finished)
  early = blocks resident before the release (t0 < release), of all blocks
  late  = the last block's entry - release (blocks that found no room until then)
  ready = median over blocks of t2 - max(t1, t0) (the prologue / x split after the wait)
  body  = median over blocks of t3 - t2;  tail = end - median t3
Usage: stamps22.py FILE [LABEL] [STEPS]
"""
import sys

import numpy as np

DT = np.dtype([('t', '<u8', (4,)), ('seq', '<u8'), ('k', '<u4'), ('n', '<u4'), ('wlo', '<u4'),
               ('block', '<u4'), ('grid', '<u4'), ('sm', '<u4')])


def kind_of(k, n, members):
    if n >= 100000:
        return 'head'
    if members == 3:
        return 'norm+qkv'
    if members == 2:
        return 'norm+gate/up'
    if k > n:
        return 'down+res'
    return 'o+res'


def main():
    path = sys.argv[1]
    label = sys.argv[2] if len(sys.argv) > 2 else path
    steps_wanted = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    r = np.fromfile(path, dtype=DT)
    r = r[r['seq'] > 0]
    t = r['t'].astype(np.int64)
    # globaltimer granularity: smallest nonzero step between sorted entry stamps
    u = np.unique(t[:, 0])
    d = np.diff(u)
    gran = int(d[d > 0].min()) if d.size else -1
    members = (r['n'] >> 28).astype(np.int64)
    n = (r['n'] & 0x0fffffff).astype(np.int64)
    key = (r["wlo"].astype(np.int64) << 24) ^ (r["k"].astype(np.int64) << 2) ^ (n << 40) ^ members
    order = np.lexsort((t[:, 1], key))
    inst = []  # (release, first, end, kind, blocks, early, late, ready, body, tail)
    i = 0
    N = len(order)
    while i < N:
        j = i + 1
        ki = key[order[i]]
        while j < N and key[order[j]] == ki and t[order[j], 1] - t[order[j - 1], 1] < 50000:
            j += 1
        idx = order[i:j]
        tt = t[idx]
        rel = tt[:, 1].min()
        first = tt[:, 0].min()
        end = tt[:, 3].max()
        early = int((tt[:, 0] < rel).sum())
        late = int(tt[:, 0].max() - rel)
        start = np.maximum(tt[:, 0], tt[:, 1])
        ready = float(np.median(tt[:, 2] - start))
        body = float(np.median(tt[:, 3] - tt[:, 2]))
        tail = float(end - np.median(tt[:, 3]))
        kd = kind_of(int(r['k'][idx[0]]), int(n[idx[0]]), int(members[idx[0]]))
        inst.append((rel, first, end, kd, len(idx), early, late, ready, body, tail,
                     int(r['grid'][idx[0]] & 0xfffff), int(r['grid'][idx[0]] >> 20)))
        i = j
    inst.sort(key=lambda x: x[0])
    heads = [x for x in inst if x[3] == 'head']
    if len(heads) < 3:
        print(f'{label}: too few steps ({len(heads)} heads)')
        return
    step_ends = [h[2] for h in heads]
    steps = [b - a for a, b in zip(step_ends, step_ends[1:])]
    # the last steps_wanted full steps (between consecutive heads), skipping outliers
    lo = step_ends[max(0, len(step_ends) - 1 - steps_wanted)]
    hi = step_ends[-1]
    sel = [x for x in inst if lo < x[2] <= hi]
    stats = {}
    prev_end = None
    prev_kind = None
    bounds = []  # head end -> the next step's first GEMV release (graph launch, host, embedding)
    for x in sel:
        gap = (x[0] - prev_end) if prev_end is not None else np.nan
        if prev_kind == 'head':
            bounds.append(gap)
            gap = np.nan
        prev_end, prev_kind = x[2], x[3]
        s = stats.setdefault(x[3], [])
        s.append((gap, x[2] - x[0], x[5] / x[4], x[6], x[7], x[8], x[9], x[4], x[10], x[11]))
    st = np.array(steps[-steps_wanted:], dtype=np.float64)
    print(f'== {label}: {len(r)} records, timer step {gran} ns, {len(heads)} heads; '
          f'step {st.mean() / 1e3:.1f} us (median {np.median(st) / 1e3:.1f}) over {len(st)} steps')
    print(f'  {"launch":<13} {"n":>5} {"grid x warps":>13} {"gap":>6} {"dur":>6} {"early":>6} '
          f'{"late":>6} {"ready":>6} {"body":>6} {"tail":>6} {"sum/step":>9}')
    for kd in ['norm+qkv', 'o+res', 'norm+gate/up', 'down+res', 'head']:
        if kd not in stats:
            continue
        a = np.array(stats[kd], dtype=np.float64)
        m = np.nanmean(a, axis=0)
        per_step = (np.nansum(a[:, 0]) + a[:, 1].sum()) / max(1, len(st))
        print(f'  {kd:<13} {len(a):>5} {int(m[8]):>8} x {int(m[9]):>2} {m[0] / 1e3:>6.2f} '
              f'{m[1] / 1e3:>6.2f} {m[2]:>6.2f} {m[3] / 1e3:>6.2f} {m[4] / 1e3:>6.2f} '
              f'{m[5] / 1e3:>6.2f} {m[6] / 1e3:>6.2f} {per_step / 1e3:>9.1f}')
    if bounds:
        print(f'  step boundary (head end -> first release): {np.nanmean(bounds) / 1e3:.1f} us')


if __name__ == '__main__':
    main()
