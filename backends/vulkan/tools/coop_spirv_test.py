#!/usr/bin/env python3
"""Tests coop_spirv.py on the NV module of matmul_coop.comp (built by CMake).

usage: coop_spirv_test.py NV.spv [spirv-val]

  1. The rewrite leaves no NV instruction, turns each NV one into its KHR counterpart (same
     counts), declares the KHR + bf16 capabilities and extensions, makes the 16-bit float a
     bf16 and gives the matrix types the uses A / B / accumulator.
  2. Undoing it (KHR -> NV, bf16 -> binary16, an independent inverse written here) gives a
     module spirv-val accepts: the rest of the module is intact (spirv-val 2022.4 cannot check
     the KHR module itself).
  3. Operands the rewrite cannot type (A and B swapped in a MulAdd) fail it.
"""
import os
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coop_spirv as c  # noqa: E402


def load(path):
    data = open(path, "rb").read()
    return list(struct.unpack("<%dI" % (len(data) // 4), data))


def count(insts, opcode):
    return sum(1 for i in insts if c.op(i) == opcode)


def undo(words):
    """KHR + bf16 -> NV + binary16 (for spirv-val)."""
    header, insts = c.parse(words)
    consts = {i[2]: i[3] for i in insts if c.op(i) == c.OP_CONSTANT and len(i) == 4}
    out = []
    for i in insts:
        o = c.op(i)
        if o == c.OP_CAPABILITY and i[1] in (c.CAP_BF16_TYPE, c.CAP_BF16_COOPMAT):
            continue
        if o == c.OP_CAPABILITY and i[1] == c.KHR_CAP:
            out += [c.inst(c.OP_CAPABILITY, [c.CAP_FLOAT16]), c.inst(c.OP_CAPABILITY, [c.NV_CAP])]
        elif o == c.OP_EXTENSION:
            name = struct.pack("<%dI" % (len(i) - 1), *i[1:]).split(b"\0")[0].decode()
            if name == "SPV_KHR_cooperative_matrix":
                out.append(c.inst(c.OP_EXTENSION, c.string_words("SPV_NV_cooperative_matrix")))
            elif name != "SPV_KHR_bfloat16":
                out.append(i)
        elif o == c.OP_TYPE_FLOAT and len(i) == 4:
            out.append(c.inst(c.OP_TYPE_FLOAT, i[1:3]))
        elif o == c.KHR_TYPE:
            out.append(c.inst(c.NV_TYPE, i[1:6]))
        elif o in (c.KHR_LOAD, c.KHR_STORE):
            # NV needs a bool column-major id: reuse OpConstantTrue/False ids of the module.
            true_id = next(x[2] for x in insts if c.op(x) == c.OP_CONSTANT_TRUE)
            false_id = next(x[2] for x in insts if c.op(x) == c.OP_CONSTANT_FALSE)
            k = 3 if o == c.KHR_LOAD else 2  # index of the layout operand in i[1:]
            ops = i[1:]
            colmajor = true_id if consts[ops[k]] == c.COL_MAJOR else false_id
            new = ops[:k] + [ops[k + 1], colmajor] + ops[k + 2:]
            out.append(c.inst(c.NV_LOAD if o == c.KHR_LOAD else c.NV_STORE, new))
        elif o == c.KHR_MULADD:
            out.append(c.inst(c.NV_MULADD, i[1:6]))
        elif o == c.KHR_LENGTH:
            out.append(c.inst(c.NV_LENGTH, i[1:]))
        else:
            out.append(i)
    return header + [w for i in out for w in i]


def main(argv):
    nv = load(argv[1])
    spirv_val = argv[2] if len(argv) > 2 else None
    _, nv_insts = c.parse(nv)
    khr = c.rewrite(nv)
    _, k_insts = c.parse(khr)
    fails = []

    def check(cond, what):
        if not cond:
            fails.append(what)

    for nv_op, khr_op in ((c.NV_TYPE, c.KHR_TYPE), (c.NV_LOAD, c.KHR_LOAD),
                          (c.NV_STORE, c.KHR_STORE), (c.NV_MULADD, c.KHR_MULADD),
                          (c.NV_LENGTH, c.KHR_LENGTH)):
        check(count(k_insts, nv_op) == 0, "NV opcode %d left" % nv_op)
        check(count(k_insts, khr_op) == count(nv_insts, nv_op), "count of opcode %d" % khr_op)
    caps = {i[1] for i in k_insts if c.op(i) == c.OP_CAPABILITY}
    check({c.KHR_CAP, c.CAP_BF16_TYPE, c.CAP_BF16_COOPMAT} <= caps, "KHR/bf16 capabilities")
    check(c.NV_CAP not in caps and c.CAP_FLOAT16 not in caps, "NV/Float16 capability left")
    exts = [struct.pack("<%dI" % (len(i) - 1), *i[1:]).split(b"\0")[0].decode()
            for i in k_insts if c.op(i) == c.OP_EXTENSION]
    check("SPV_KHR_cooperative_matrix" in exts and "SPV_KHR_bfloat16" in exts, "extensions")
    check("SPV_NV_cooperative_matrix" not in exts, "NV extension left")
    floats16 = [i for i in k_insts if c.op(i) == c.OP_TYPE_FLOAT and i[2] == 16]
    check(len(floats16) == 1 and floats16[0][3:] == [c.FP_ENCODING_BF16], "bf16 float type")
    consts = {i[2]: i[3] for i in k_insts if c.op(i) == c.OP_CONSTANT and len(i) == 4}
    uses = sorted(consts.get(i[6]) for i in k_insts if c.op(i) == c.KHR_TYPE)
    check(uses == [c.USE_A, c.USE_B, c.USE_ACC], "matrix uses %s" % uses)
    check(count(k_insts, c.OP_SPEC_CONSTANT) == count(nv_insts, c.OP_SPEC_CONSTANT) - 1,
          "B's row spec constant made a constant")
    check(khr[3] > nv[3], "bound raised for the new constants")
    if spirv_val:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "undone.spv")
            undone = undo(khr)
            with open(path, "wb") as f:
                f.write(struct.pack("<%dI" % len(undone), *undone))
            r = subprocess.run([spirv_val, "--target-env", "vulkan1.2", path],
                               capture_output=True, text=True)
            check(r.returncode == 0, "spirv-val of the undone module: " + r.stdout + r.stderr)
    # A MulAdd with A and B swapped must fail the rewrite.
    header, insts = c.parse(nv)
    for i in insts:
        if c.op(i) == c.NV_MULADD:
            i[3], i[4] = i[4], i[3]
            break
    try:
        c.rewrite(header + [w for i in insts for w in i])
        fails.append("swapped MulAdd operands accepted")
    except c.RewriteError:
        pass
    for f in fails:
        print("FAIL:", f)
    print("coop_spirv_test: %d checks failed" % len(fails) if fails else "coop_spirv_test: OK")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
