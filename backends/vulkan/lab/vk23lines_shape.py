#!/usr/bin/env python3
"""Which bytes the lanes of one subgroup ask for in one load instruction of the decode GEMV
modules (matmul.comp), for a fixed row r, round i and half h: the address formulas copied from
the shader, evaluated for SG = 32 (NVIDIA), one step (c0 = 0), n0 = 0, a row w_row bytes long.
Prints, per module and instruction, the 128-byte lines touched and the bytes asked of each
(a "whole-line" instruction asks all 128 bytes of every line it touches). vk23-lines, 2026-11-28.
No GPU needed: python3 backends/vulkan/lab/vk23lines_shape.py
"""
SG, QL, IR, CHUNK = 32, 4, 4, 32
W_ROW = 4096 * 2  # bf16 row of the 8B's K = 4096 (any multiple of 512 gives the same shape)


def lines(addrs):  # addrs: [(lane, start, nbytes)] -> {line: bytes asked}
    out = {}
    for _, a, n in addrs:
        for b in range(a, a + n):
            out[b // 128] = out.get(b // 128, 0) + 1
    return out


def show(name, instrs):
    shapes = set()
    for key, addrs in instrs:
        ls = lines(addrs)
        shapes.add((len(ls), min(ls.values()), max(ls.values()), sum(ls.values())))
    for n_lines, lo, hi, total in sorted(shapes):
        whole = "whole lines" if lo == hi == 128 else "PART lines"
        print(f"  {name:58s} {total:4d} B an instr, {n_lines:2d} lines, {lo}-{hi} B a line: {whole}")


def main():
    print(f"SG = {SG}; one instruction = the subgroup's {SG} lanes at a fixed (r, i, h)")
    for wdt, raw in (("bf16/f16", 4), ("f32", 8)):
        print(f"weights {wdt} (RAW = {raw}, RAW / QL = {raw // QL}, DROWS = {4 if raw == 4 else 2})")
        drows = 4 if raw == 4 else 2
        # DecodeRowsCoalesced: c = c0 + i * (SG / QL) + lane / QL, q = lane % QL,
        # T.w + (n0 + r) * w_row + c * (RAW * 16) + q * (RAW / QL * 16) + 16 * h
        ins = []
        for r in range(drows):
            for i in range(IR):
                for h in range(raw // QL):
                    a = []
                    for lane in range(SG):
                        c, q = i * (SG // QL) + lane // QL, lane % QL
                        a.append((lane, r * W_ROW + c * raw * 16 + q * (raw // QL * 16) + 16 * h, 16))
                    ins.append(((r, i, h), a))
        show("DecodeRowsCoalesced (DECODE 1)", ins)
        # DecodeRowsSkewed, SKEW_MODE 1 (default): wl = T.w + n0 * w_row + lane * (RAW / QL * 16),
        # ws = wl + c0 * RAW * 16, load ws + roff[r] + i * round_bytes + 16 h,
        # round_bytes = (SG / QL) * RAW * 16
        rb = (SG // QL) * raw * 16
        ins = [((r, i, h), [(l, l * (raw // QL * 16) + r * W_ROW + i * rb + 16 * h, 16)
                            for l in range(SG)])
               for r in range(drows) for i in range(IR) for h in range(raw // QL)]
        show("DecodeRowsSkewed SKEW_MODE 1 (DECODE 3: NORM / PAIRED / persist)", ins)
        # SKEW_MODE 2: stage t, lane q loads item j = t - q (i = j / DROWS, r = j % DROWS)
        nit = drows * IR
        ins = []
        for t in range(nit + QL - 1):
            for h in range(raw // QL):
                a = []
                for l in range(SG):
                    j = t - l % QL
                    if 0 <= j < nit:
                        i, r = j // drows, j % drows
                        a.append((l, l * (raw // QL * 16) + r * W_ROW + i * rb + 16 * h, 16))
                if len(a) == SG:
                    ins.append(((t, h), a))
        show("DecodeRowsSkewed SKEW_MODE 2 (full stages)", ins)
        # DecodeRows / DecodeSplit: lane (invocation) l takes chunk c0 + l whole: ChunkDot's
        # Ld16(wchunk + 16 i), wchunk = w + row * w_row + c * RAW * 16
        ins = [((r, i), [(l, r * W_ROW + l * raw * 16 + 16 * i, 16) for l in range(SG)])
               for r in range(drows) for i in range(raw)]
        show("DecodeRows (DECODE 0) / DecodeSplit (DECODE 2)", ins)
    # x (f32) and the norm weight: LoadX4 / NormX4(P, k) and (P, k + 4),
    # k = c * CHUNK + q * PIECE, PIECE = CHUNK / QL
    print("x / norm weight (f32), Coalesced and Skewed modules")
    ins = []
    for i in range(IR):
        for e in range(2):
            ins.append(((i, e), [(l, ((i * (SG // QL) + l // QL) * CHUNK + (l % QL) * (CHUNK // QL)
                                      + 4 * e) * 4, 16) for l in range(SG)]))
    show("LoadX4 / NormX4 at k and k + 4", ins)


if __name__ == "__main__":
    main()
