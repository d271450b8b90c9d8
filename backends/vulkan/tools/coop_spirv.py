#!/usr/bin/env python3
"""Rewrites a GL_NV_cooperative_matrix compute module into SPV_KHR_cooperative_matrix + bf16.

Why: Debian 12's glslang (11.13) has neither GL_KHR_cooperative_matrix nor a bfloat16 type, but
it compiles GL_NV_cooperative_matrix with float16_t operands. The instructions map one to one,
so this build step turns that module into the KHR one the H100's driver offers with bf16
(shaders/matmul_coop.comp says what the source may use). Written from the SPIR-V registry's
text of SPV_NV_cooperative_matrix, SPV_KHR_cooperative_matrix and SPV_KHR_bfloat16.

  * OpCapability CooperativeMatrixNV -> CooperativeMatrixKHR + BFloat16TypeKHR +
    BFloat16CooperativeMatrixKHR; Float16 dropped (no binary16 type is left);
    extension SPV_NV_cooperative_matrix -> SPV_KHR_cooperative_matrix + SPV_KHR_bfloat16.
  * OpTypeFloat 16 -> OpTypeFloat 16 BFloat16KHR. The module may use the 16-bit float only as
    a cooperative-matrix component and in array / pointer types (checked).
  * OpTypeCooperativeMatrixNV T scope rows cols -> OpTypeCooperativeMatrixKHR ... Use:
    MatrixAccumulatorKHR for a 32-bit float component; for the 16-bit one MatrixBKHR when Rows
    is a specialization constant (the source's marker for B; it becomes a plain constant),
    MatrixAKHR otherwise. Every MulAdd's operands must then be (A, B, accumulator) (checked
    through the instructions that define them).
  * Load/Store NV (stride, column-major bool) -> KHR (layout constant, stride); MulAdd and
    Length keep their operands.
Any instruction or shape this does not expect fails the build (exit status 1).

usage: coop_spirv.py IN.spv OUT (OUT ending in .inc: a braced C list of words, else binary)
"""
import struct
import sys

MAGIC = 0x07230203
# Opcodes / enumerants (SPIR-V registry).
OP_EXTENSION, OP_CAPABILITY, OP_TYPE_INT, OP_TYPE_FLOAT = 10, 17, 21, 22
OP_CONSTANT_TRUE, OP_CONSTANT_FALSE, OP_CONSTANT, OP_SPEC_CONSTANT = 41, 42, 43, 50
OP_DECORATE, OP_LOAD = 71, 61
OP_TYPE_POINTER, OP_TYPE_RUNTIME_ARRAY, OP_TYPE_ARRAY = 32, 29, 28
DECORATION_SPEC_ID = 1
CAP_FLOAT16 = 9
NV_CAP, NV_TYPE, NV_LOAD, NV_STORE, NV_MULADD, NV_LENGTH = 5357, 5358, 5359, 5360, 5361, 5362
KHR_CAP, KHR_TYPE, KHR_LOAD, KHR_STORE, KHR_MULADD, KHR_LENGTH = 6022, 4456, 4457, 4458, 4459, 4460
CAP_BF16_TYPE, CAP_BF16_COOPMAT = 5116, 5118
FP_ENCODING_BF16 = 0
USE_A, USE_B, USE_ACC = 0, 1, 2
ROW_MAJOR, COL_MAJOR = 0, 1
# Opcodes whose words are (result type, result id, ...): enough to type MulAdd's operands.
TYPED_VALUE_OPS = {1, 57, 61, 80, 81, 83, 169, 245, NV_LOAD, NV_MULADD}


class RewriteError(Exception):
    pass


def string_words(s):
    b = s.encode() + b"\0"
    b += b"\0" * (-len(b) % 4)
    return list(struct.unpack("<%dI" % (len(b) // 4), b))


def inst(op, operands):
    return [((len(operands) + 1) << 16) | op] + list(operands)


def parse(words):
    if len(words) < 5 or words[0] != MAGIC:
        raise RewriteError("not a little-endian SPIR-V module")
    out, i = [], 5
    while i < len(words):
        n = words[i] >> 16
        if n == 0 or i + n > len(words):
            raise RewriteError("truncated instruction at word %d" % i)
        out.append(list(words[i:i + n]))
        i += n
    return words[:5], out


def op(ins):
    return ins[0] & 0xFFFF


def rewrite(words):
    header, insts = parse(words)
    bound = header[3]

    def new_id():
        nonlocal bound
        bound += 1
        return bound - 1

    floats = {ins[1]: ins[2] for ins in insts if op(ins) == OP_TYPE_FLOAT}
    spec_consts = {ins[2] for ins in insts if op(ins) == OP_SPEC_CONSTANT}
    bools = {ins[2]: True for ins in insts if op(ins) == OP_CONSTANT_TRUE}
    bools.update({ins[2]: False for ins in insts if op(ins) == OP_CONSTANT_FALSE})
    uint_ids = [ins[1] for ins in insts if op(ins) == OP_TYPE_INT and ins[2:4] == [32, 0]]
    if not uint_ids:
        raise RewriteError("no 32-bit unsigned int type")
    uint_t = uint_ids[0]
    half = [t for t, w in floats.items() if w == 16]
    if not any(op(ins) == NV_TYPE for ins in insts):
        raise RewriteError("no OpTypeCooperativeMatrixNV")
    if len(half) != 1:
        raise RewriteError("expected exactly one 16-bit float type, found %d" % len(half))
    half = half[0]
    # The 16-bit float may only be a component / element / pointee type.
    for ins in insts:
        if op(ins) in (OP_TYPE_FLOAT, NV_TYPE, OP_TYPE_POINTER, OP_TYPE_RUNTIME_ARRAY, OP_TYPE_ARRAY):
            continue
        if len(ins) > 1 and ins[1] == half:
            raise RewriteError("opcode %d computes with the 16-bit float" % op(ins))
    # Classify the matrix types.
    use_of, b_rows = {}, set()
    for ins in insts:
        if op(ins) != NV_TYPE:
            continue
        res, comp, rows = ins[1], ins[2], ins[4]
        width = floats.get(comp)
        if width == 32:
            use_of[res] = USE_ACC
        elif width == 16:
            use_of[res] = USE_B if rows in spec_consts else USE_A
            if rows in spec_consts:
                b_rows.add(rows)
        else:
            raise RewriteError("cooperative matrix of a component other than f16/f32")
    # Uint constants for the Use and layout operands (new ones, placed after the uint type).
    consts = {}
    extra = []
    for v in sorted({USE_A, USE_B, USE_ACC, ROW_MAJOR, COL_MAJOR}):
        consts[v] = new_id()
        extra.append(inst(OP_CONSTANT, [uint_t, consts[v], v]))
    value_type = {}
    for ins in insts:
        if op(ins) in TYPED_VALUE_OPS and len(ins) >= 3:
            value_type[ins[2]] = ins[1]

    def layout(bool_id):
        if bool_id not in bools:
            raise RewriteError("column-major operand %d is not a constant" % bool_id)
        return consts[COL_MAJOR if bools[bool_id] else ROW_MAJOR]

    out = []
    caps_done = False
    for ins in insts:
        o = op(ins)
        if o == OP_CAPABILITY and ins[1] == CAP_FLOAT16:
            continue
        if o == OP_CAPABILITY and ins[1] == NV_CAP:
            if not caps_done:
                for c in (KHR_CAP, CAP_BF16_TYPE, CAP_BF16_COOPMAT):
                    out.append(inst(OP_CAPABILITY, [c]))
                caps_done = True
            continue
        if o == OP_EXTENSION:
            name = struct.pack("<%dI" % (len(ins) - 1), *ins[1:]).split(b"\0")[0].decode()
            if name == "SPV_NV_cooperative_matrix":
                out.append(inst(OP_EXTENSION, string_words("SPV_KHR_cooperative_matrix")))
                out.append(inst(OP_EXTENSION, string_words("SPV_KHR_bfloat16")))
                continue
        if o == OP_DECORATE and ins[1] in b_rows and ins[2] == DECORATION_SPEC_ID:
            continue
        if o == OP_SPEC_CONSTANT and ins[2] in b_rows:
            out.append(inst(OP_CONSTANT, ins[1:]))
            continue
        if o == OP_TYPE_FLOAT and ins[1] == half:
            out.append(inst(OP_TYPE_FLOAT, [half, 16, FP_ENCODING_BF16]))
            continue
        if o == NV_TYPE:
            out.append(inst(KHR_TYPE, ins[1:6] + [consts[use_of[ins[1]]]]))
            continue
        if o == NV_LOAD:  # type, result, pointer, stride, colmajor, [memory operands]
            out.append(inst(KHR_LOAD, ins[1:4] + [layout(ins[5]), ins[4]] + ins[6:]))
            continue
        if o == NV_STORE:  # pointer, object, stride, colmajor, [memory operands]
            out.append(inst(KHR_STORE, ins[1:3] + [layout(ins[4]), ins[3]] + ins[5:]))
            continue
        if o == NV_MULADD:  # type, result, A, B, C
            want = (USE_A, USE_B, USE_ACC)
            for operand, use in zip(ins[3:6], want):
                t = value_type.get(operand)
                if t is None or use_of.get(t) != use:
                    raise RewriteError("MulAdd %%%d: operand %%%d is not a matrix of use %d"
                                       % (ins[2], operand, use))
            if use_of.get(ins[1]) != USE_ACC:
                raise RewriteError("MulAdd %%%d: result is not an accumulator" % ins[2])
            out.append(inst(KHR_MULADD, ins[1:6]))
            continue
        if o == NV_LENGTH:
            out.append(inst(KHR_LENGTH, ins[1:]))
            continue
        out.append(ins)
        if o == OP_TYPE_INT and ins[1] == uint_t:
            out.extend(extra)
    if not caps_done:
        raise RewriteError("no OpCapability CooperativeMatrixNV")
    for ins in out:
        if op(ins) in (NV_CAP, NV_TYPE, NV_LOAD, NV_STORE, NV_MULADD, NV_LENGTH):
            raise RewriteError("NV instruction left")
    header = header[:3] + [bound] + header[4:]
    return header + [w for ins in out for w in ins]


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    data = open(argv[1], "rb").read()
    words = list(struct.unpack("<%dI" % (len(data) // 4), data))
    try:
        res = rewrite(words)
    except RewriteError as e:
        print("coop_spirv.py: %s: %s" % (argv[1], e), file=sys.stderr)
        return 1
    if argv[2].endswith(".inc"):
        with open(argv[2], "w") as f:
            f.write("{" + ",\n".join(", ".join("0x%08x" % w for w in res[i:i + 8])
                                      for i in range(0, len(res), 8)) + "}\n")
    else:
        with open(argv[2], "wb") as f:
            f.write(struct.pack("<%dI" % len(res), *res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
