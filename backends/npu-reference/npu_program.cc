#include "npu_program.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "graph.pb.h"
#include "tessera/quant_formats.h"

namespace tessera::npu {

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalize
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u);
  if (ax >= 0x477ff000u) return sign | 0x7c00u;  // overflow saturates to infinity
  if (ax < 0x38800000u) {                        // f16 subnormal or zero
    if (ax < 0x33000000u) return sign;
    const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(ax >> 23);
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return sign | static_cast<uint16_t>(q);
  }
  uint32_t q = (ax >> 13) - (112u << 10);
  const uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;
  return sign | static_cast<uint16_t>(q);
}

int64_t Slot::Numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

uint64_t Slot::Bytes() const {
  if (dtype == TSR_DTYPE_Q8_B32)
    return static_cast<uint64_t>(Numel() / TSR_QBLOCK * TSR_BLOCK_Q8_BYTES);
  const uint64_t es = dtype == TSR_DTYPE_I32 ? 4 : dtype == TSR_DTYPE_F16 ? 2 : 1;
  return static_cast<uint64_t>(Numel()) * es;
}

namespace {

bool IsFloat(tsr_dtype t) {
  return t == TSR_DTYPE_F32 || t == TSR_DTYPE_F16 || t == TSR_DTYPE_BF16;
}

int64_t Numel(const tsr_tensor& t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim; ++i) n *= t.ne[i];
  return n;
}

// in1 of a binary op: the same size as in0, or its trailing dims (a broadcast row).
bool Broadcastable(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  if (b.size() > a.size()) return false;
  int64_t na = 1, nb = 1;
  for (int64_t d : a) na *= d;
  for (int64_t d : b) nb *= d;
  if (na == nb) return true;
  for (size_t i = 0; i < b.size(); ++i)
    if (b[b.size() - 1 - i] != a[a.size() - 1 - i]) return false;
  return true;
}

std::vector<int64_t> Shape(const tsr_tensor& t) {
  return std::vector<int64_t>(t.ne, t.ne + t.ndim);
}

}  // namespace

bool CanRun(const tsr_graph_view& g, const tsr_node& n) {
  auto in = [&](int i) -> const tsr_tensor* {
    return i < n.n_inputs && n.inputs[i] >= 0 ? &g.tensors[n.inputs[i]] : nullptr;
  };
  const tsr_tensor& out = g.tensors[n.output];
  if (!IsFloat(out.dtype) || in(0) == nullptr) return false;
  switch (n.op) {
    case TSR_OP_MATMUL: {
      const tsr_tensor *a = in(0), *w = in(1);
      if (w == nullptr || !IsFloat(a->dtype) || w->ndim != 2) return false;
      if (!IsFloat(w->dtype) && w->dtype != TSR_DTYPE_Q8_B32) return false;  // int8 or f16
      if (a->ne[a->ndim - 1] != w->ne[1]) return false;
      return in(2) == nullptr || (IsFloat(in(2)->dtype) && Numel(*in(2)) == w->ne[0]);
    }
    case TSR_OP_ADD:
    case TSR_OP_SUB:
    case TSR_OP_MUL:
    case TSR_OP_DIV:
    case TSR_OP_SWIGLU:
    case TSR_OP_GEGLU:
      return in(1) != nullptr && IsFloat(in(0)->dtype) && IsFloat(in(1)->dtype) &&
             Broadcastable(Shape(*in(0)), Shape(*in(1))) &&
             (n.op == TSR_OP_ADD || n.op == TSR_OP_SUB || n.op == TSR_OP_MUL ||
              n.op == TSR_OP_DIV || Numel(*in(0)) == Numel(*in(1)));
    case TSR_OP_SCALE:
    case TSR_OP_SILU:
    case TSR_OP_GELU:
    case TSR_OP_GELU_TANH:
    case TSR_OP_RELU:
    case TSR_OP_TANH:
    case TSR_OP_SIGMOID:
    case TSR_OP_SOFTCAP: return IsFloat(in(0)->dtype);
    case TSR_OP_SOFTMAX: return IsFloat(in(0)->dtype) && in(1) == nullptr;
    case TSR_OP_RMS_NORM:
    case TSR_OP_LAYER_NORM:
      for (int i = 1; i < 3; ++i)
        if (in(i) != nullptr &&
            (!IsFloat(in(i)->dtype) || Numel(*in(i)) != in(0)->ne[in(0)->ndim - 1]))
          return false;
      return IsFloat(in(0)->dtype);
    case TSR_OP_ROPE:
      return in(0)->ndim == 3 && IsFloat(in(0)->dtype) && in(1) != nullptr &&
             in(1)->dtype == TSR_DTYPE_I32 && in(2) != nullptr && IsFloat(in(2)->dtype) &&
             n.iparams[1] <= in(0)->ne[2] && n.iparams[1] % 2 == 0 &&
             Numel(*in(2)) * 2 >= n.iparams[1] && (n.iparams[0] == 0 || n.iparams[0] == 1);
    case TSR_OP_ATTENTION:
      for (int i = 0; i < 3; ++i)
        if (in(i) == nullptr || !IsFloat(in(i)->dtype) || in(i)->ndim != 3) return false;
      for (int i = 3; i < 5; ++i)
        if (in(i) == nullptr || in(i)->dtype != TSR_DTYPE_I32) return false;
      return in(0)->ne[1] % in(1)->ne[1] == 0 && in(0)->ne[2] == in(1)->ne[2];
    case TSR_OP_KV_WRITE: {  // into a pool the device holds (f16, its own layout)
      const tsr_tensor *cache = in(0), *rows = in(1), *slots = in(2);
      return cache->ndim == 4 && IsFloat(cache->dtype) && rows != nullptr && rows->ndim == 3 &&
             IsFloat(rows->dtype) && rows->ne[1] == cache->ne[2] && rows->ne[2] == cache->ne[3] &&
             slots != nullptr && slots->dtype == TSR_DTYPE_I32 && Numel(*slots) == rows->ne[0] &&
             Numel(out) == Numel(*cache);
    }
    case TSR_OP_PAGED_ATTENTION: {
      const tsr_tensor *q = in(0), *k = in(1), *v = in(2);
      if (k == nullptr || v == nullptr || q->ndim != 3 || k->ndim != 4 || v->ndim != 4 ||
          !IsFloat(q->dtype) || !IsFloat(k->dtype) || !IsFloat(v->dtype))
        return false;
      for (int i = 3; i < 6; ++i)
        if (in(i) == nullptr || in(i)->dtype != TSR_DTYPE_I32) return false;
      return in(3)->ndim == 2 && in(3)->ne[0] == Numel(*in(4)) &&
             Numel(*in(5)) == Numel(*in(4)) + 1 && k->ne[2] > 0 && q->ne[1] % k->ne[2] == 0 &&
             q->ne[2] == k->ne[3] && k->ne[0] == v->ne[0] && k->ne[1] == v->ne[1] &&
             k->ne[2] == v->ne[2];
    }
    default: return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Compile

namespace {

constexpr uint64_t kScratchAlign = 64;

bool Fail(std::string* error, const std::string& message) {
  *error = message;
  return false;
}

bool AddSlot(const wire::TensorProto& t, SlotKind kind, int32_t index, uint64_t offset, Program* p,
             std::map<std::string, int32_t>* by_name, std::string* error) {
  Slot s;
  s.name = t.name();
  s.dtype = static_cast<tsr_dtype>(t.dtype());
  s.shape.assign(t.shape().begin(), t.shape().end());
  s.kind = kind;
  s.index = index;
  s.offset = offset;
  const bool ok_dtype = s.dtype == TSR_DTYPE_F16 || s.dtype == TSR_DTYPE_I32 ||
                        (kind == SlotKind::kWeight && s.dtype == TSR_DTYPE_Q8_B32);
  if (!ok_dtype)
    return Fail(error, "tensor " + s.name + " has dtype " + std::to_string(s.dtype) +
                           ": npu-reference computes in f16/int8 only (the host converts f32 at "
                           "the boundary; weights may be f16 or Q8_B32)");
  if (s.dtype == TSR_DTYPE_Q8_B32 && (s.shape.empty() || s.shape.back() % TSR_QBLOCK != 0))
    return Fail(error, "Q8_B32 weight " + s.name + " is not made of whole blocks");
  if (kind == SlotKind::kScratch) {
    s.offset = (p->scratch_bytes + kScratchAlign - 1) / kScratchAlign * kScratchAlign;
    p->scratch_bytes = s.offset + s.Bytes();
  }
  if (!by_name->emplace(s.name, static_cast<int32_t>(p->slots.size())).second)
    return Fail(error, "tensor " + s.name + " is declared twice");
  p->slots.push_back(std::move(s));
  return true;
}

// Shape/dtype checks of one lowered instruction (what the claim promised, re-checked on the
// bytes actually received).
bool CheckInstr(const Program& p, const Instr& ins, std::string* error) {
  auto slot = [&](int i) -> const Slot* {
    return i < static_cast<int>(ins.in.size()) && ins.in[i] >= 0 ? &p.slots[ins.in[i]] : nullptr;
  };
  const Slot& out = p.slots[ins.out];
  const std::string what = "node writing " + out.name + " (op " + std::to_string(ins.op) + ")";
  if (slot(0) == nullptr) return Fail(error, what + ": input 0 is missing");
  if (out.dtype != TSR_DTYPE_F16) return Fail(error, what + ": output must be f16");
  switch (ins.op) {
    case TSR_OP_MATMUL: {
      const Slot *a = slot(0), *w = slot(1);
      if (w == nullptr || w->shape.size() != 2 || a->shape.empty() ||
          a->shape.back() != w->shape[1] || out.Numel() != a->Numel() / w->shape[1] * w->shape[0])
        return Fail(error, what + ": shapes do not match [M, K] x [N, K]^T");
      if (slot(2) != nullptr && slot(2)->Numel() != w->shape[0])
        return Fail(error, what + ": bias size");
      return true;
    }
    case TSR_OP_ROPE:
      if (slot(1) == nullptr || slot(1)->dtype != TSR_DTYPE_I32 || slot(2) == nullptr ||
          slot(0)->shape.size() != 3 || slot(1)->Numel() != slot(0)->shape[0] || ins.ip[1] < 0 ||
          ins.ip[1] % 2 != 0 || ins.ip[1] > slot(0)->shape[2] || slot(2)->Numel() * 2 < ins.ip[1] ||
          out.Numel() != slot(0)->Numel())
        return Fail(error, what + ": ROPE wants x[T, H, D], positions[T] i32, inv_freq[R/2]");
      return true;
    case TSR_OP_ATTENTION:
      for (int i = 0; i < 5; ++i)
        if (slot(i) == nullptr || slot(i)->dtype != (i < 3 ? TSR_DTYPE_F16 : TSR_DTYPE_I32))
          return Fail(error, what + ": ATTENTION wants q, k, v f16 and cu_q, cu_k i32");
      {
        const Slot &q = *slot(0), &k = *slot(1), &v = *slot(2);
        const bool ok =
            q.shape.size() == 3 && k.shape.size() == 3 && v.shape.size() == 3 && k.shape[1] > 0 &&
            q.shape[1] % k.shape[1] == 0 && q.shape[2] == k.shape[2] && k.shape[0] == v.shape[0] &&
            k.shape[1] == v.shape[1] && slot(3)->Numel() == slot(4)->Numel() &&
            slot(3)->Numel() >= 1 && out.Numel() == q.shape[0] * q.shape[1] * v.shape[2];
        if (!ok) return Fail(error, what + ": ATTENTION shapes q[T,Hq,D] k[Tk,Hkv,D] v[Tk,Hkv,Dv]");
      }
      return true;
    case TSR_OP_KV_WRITE: {
      const Slot *cache = slot(0), *rows = slot(1), *slots = slot(2);
      const bool ok = ins.out == ins.in[0] && cache->dtype == TSR_DTYPE_F16 &&
                      cache->shape.size() == 4 && rows != nullptr && rows->dtype == TSR_DTYPE_F16 &&
                      rows->shape.size() == 3 && rows->shape[1] == cache->shape[2] &&
                      rows->shape[2] == cache->shape[3] && slots != nullptr &&
                      slots->dtype == TSR_DTYPE_I32 && slots->Numel() == rows->shape[0];
      if (!ok)
        return Fail(error, what +
                               ": KV_WRITE writes rows[T,Hkv,D] f16 at slots[T] i32 into the "
                               "f16 cache[NB,BS,Hkv,D] it names as its output (in place)");
      return true;
    }
    case TSR_OP_PAGED_ATTENTION:
      for (int i = 0; i < 6; ++i)
        if (slot(i) == nullptr || slot(i)->dtype != (i < 3 ? TSR_DTYPE_F16 : TSR_DTYPE_I32))
          return Fail(error, what +
                                 ": PAGED_ATTENTION wants q, k/v caches f16 and block_table, "
                                 "kv_lens, cu_q i32");
      {
        const Slot &q = *slot(0), &k = *slot(1), &v = *slot(2), &table = *slot(3);
        const bool ok = q.shape.size() == 3 && k.shape.size() == 4 && v.shape.size() == 4 &&
                        table.shape.size() == 2 && k.shape[2] > 0 && q.shape[1] % k.shape[2] == 0 &&
                        q.shape[2] == k.shape[3] && k.shape[0] == v.shape[0] &&
                        k.shape[1] == v.shape[1] && k.shape[2] == v.shape[2] &&
                        table.shape[0] == slot(4)->Numel() &&
                        slot(5)->Numel() == slot(4)->Numel() + 1 &&
                        out.Numel() == q.shape[0] * q.shape[1] * v.shape[3];
        if (!ok)
          return Fail(error, what +
                                 ": PAGED_ATTENTION shapes q[T,Hq,D] caches[NB,BS,Hkv,D] "
                                 "block_table[S,MB] kv_lens[S] cu_q[S+1]");
      }
      return true;
    default:
      for (size_t i = 0; i < ins.in.size(); ++i)
        if (slot(static_cast<int>(i)) && slot(static_cast<int>(i))->dtype != TSR_DTYPE_F16)
          return Fail(error, what + ": float operands must be f16");
      if (ins.op == TSR_OP_COPY && slot(0)->Numel() != out.Numel())
        return Fail(error, what + ": COPY changes the element count");
      if (ins.op == TSR_OP_RMS_NORM || ins.op == TSR_OP_LAYER_NORM) {
        const int64_t d = slot(0)->shape.empty() ? 0 : slot(0)->shape.back();
        for (int i = 1; i < 3; ++i)
          if (d == 0 || (slot(i) != nullptr && slot(i)->Numel() != d))
            return Fail(error, what + ": norm weight/bias must match the innermost dim");
      }
      if (out.Numel() != slot(0)->Numel() && ins.op != TSR_OP_COPY)
        return Fail(error, what + ": output size differs from input 0");
      if (ins.op == TSR_OP_ADD || ins.op == TSR_OP_SUB || ins.op == TSR_OP_MUL ||
          ins.op == TSR_OP_DIV || ins.op == TSR_OP_SWIGLU || ins.op == TSR_OP_GEGLU) {
        if (slot(1) == nullptr || slot(1)->Numel() == 0 ||
            slot(0)->Numel() % slot(1)->Numel() != 0 || out.Numel() != slot(0)->Numel())
          return Fail(error, what + ": binary op operands do not broadcast");
      }
      return true;
  }
}

bool Lower(const wire::GraphProto& g, Program* p, std::string* error) {
  std::map<std::string, int32_t> by_name;
  for (int i = 0; i < g.inputs_size(); ++i)
    if (!AddSlot(g.inputs(i), SlotKind::kInput, i, 0, p, &by_name, error)) return false;
  for (int i = 0; i < g.outputs_size(); ++i)
    if (!AddSlot(g.outputs(i), SlotKind::kOutput, i, 0, p, &by_name, error)) return false;
  for (const auto& w : g.weights())
    if (!AddSlot(w.tensor(), SlotKind::kWeight, w.buffer_index(), w.offset(), p, &by_name, error))
      return false;
  for (const auto& t : g.intermediates())
    if (!AddSlot(t, SlotKind::kScratch, 0, 0, p, &by_name, error)) return false;
  p->n_inputs = g.inputs_size();
  p->n_outputs = g.outputs_size();
  p->n_weights = g.weights_size();
  for (const auto& n : g.nodes()) {
    Instr ins;
    ins.op = n.op();
    for (const std::string& name : n.inputs()) {
      if (name.empty()) {
        ins.in.push_back(-1);
        continue;
      }
      auto it = by_name.find(name);
      if (it == by_name.end()) return Fail(error, "node input " + name + " is not declared");
      ins.in.push_back(it->second);
    }
    auto out = by_name.find(n.output());
    if (out == by_name.end()) return Fail(error, "node output " + n.output() + " is not declared");
    ins.out = out->second;
    for (int i = 0; i < n.iparams_size() && i < TSR_MAX_PARAMS; ++i) ins.ip[i] = n.iparams(i);
    for (int i = 0; i < n.fparams_size() && i < TSR_MAX_PARAMS; ++i) ins.fp[i] = n.fparams(i);
    switch (ins.op) {
      case TSR_OP_MATMUL:
      case TSR_OP_ADD:
      case TSR_OP_SUB:
      case TSR_OP_MUL:
      case TSR_OP_DIV:
      case TSR_OP_SCALE:
      case TSR_OP_SILU:
      case TSR_OP_GELU:
      case TSR_OP_GELU_TANH:
      case TSR_OP_RELU:
      case TSR_OP_TANH:
      case TSR_OP_SIGMOID:
      case TSR_OP_SOFTCAP:
      case TSR_OP_SWIGLU:
      case TSR_OP_GEGLU:
      case TSR_OP_RMS_NORM:
      case TSR_OP_LAYER_NORM:
      case TSR_OP_ROPE:
      case TSR_OP_SOFTMAX:
      case TSR_OP_ATTENTION:
      case TSR_OP_KV_WRITE:
      case TSR_OP_PAGED_ATTENTION:
      case TSR_OP_COPY: break;
      default: return Fail(error, "op " + std::to_string(ins.op) + " is not in the NPU's opset");
    }
    if (!CheckInstr(*p, ins, error)) return false;
    p->code.push_back(std::move(ins));
  }
  return true;
}

}  // namespace

tsr_status CompileGraph(const void* bytes, size_t size, Program* out, std::string* error) {
  wire::GraphProto g;
  if (!g.ParseFromArray(bytes, static_cast<int>(size))) {
    *error = "the bytes are not a tessera.wire.GraphProto";
    return TSR_ERR_INVALID_ARGUMENT;
  }
  if (g.opset_major() != TSR_ABI_MAJOR) {
    *error = "opset " + std::to_string(g.opset_major()) + "." + std::to_string(g.opset_minor()) +
             " is not the NPU's (" + std::to_string(TSR_ABI_MAJOR) + ".x)";
    return TSR_ERR_UNSUPPORTED;
  }
  *out = Program{};
  return Lower(g, out, error) ? TSR_OK : TSR_ERR_UNSUPPORTED;
}

// ---------------------------------------------------------------------------------------------
// Blobs: little-endian PODs behind a magic and the compat string.

namespace {

constexpr char kMagic[8] = {'T', 'N', 'P', 'U', 'R', 'E', 'F', '1'};

class Writer {
 public:
  template <typename T>
  void Pod(const T& v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void Str(const std::string& v) {
    Pod<uint64_t>(v.size());
    s += v;
  }
  std::string s;
};

class Reader {
 public:
  Reader(const void* p, size_t n) : p_(static_cast<const char*>(p)), n_(n) {}
  template <typename T>
  bool Pod(T* v) {
    if (n_ - at_ < sizeof(T)) return false;
    std::memcpy(v, p_ + at_, sizeof(T));
    at_ += sizeof(T);
    return true;
  }
  bool Str(std::string* v) {
    uint64_t len = 0;
    if (!Pod(&len) || n_ - at_ < len) return false;
    v->assign(p_ + at_, len);
    at_ += len;
    return true;
  }
  bool done() const { return at_ == n_; }

 private:
  const char* p_;
  size_t n_, at_ = 0;
};

}  // namespace

std::string SerializeProgram(const Program& p, const std::string& compat) {
  Writer w;
  w.s.append(kMagic, sizeof(kMagic));
  w.Str(compat);
  w.Pod(p.n_inputs);
  w.Pod(p.n_outputs);
  w.Pod(p.n_weights);
  w.Pod(p.scratch_bytes);
  w.Pod<uint64_t>(p.slots.size());
  for (const Slot& s : p.slots) {
    w.Str(s.name);
    w.Pod(s.dtype);
    w.Pod(s.kind);
    w.Pod(s.index);
    w.Pod(s.offset);
    w.Pod<uint64_t>(s.shape.size());
    for (int64_t d : s.shape) w.Pod(d);
  }
  w.Pod<uint64_t>(p.code.size());
  for (const Instr& i : p.code) {
    w.Pod(i.op);
    w.Pod(i.out);
    w.Pod<uint64_t>(i.in.size());
    for (int32_t x : i.in) w.Pod(x);
    w.Pod(i.ip);
    w.Pod(i.fp);
  }
  return w.s;
}

tsr_status DeserializeProgram(const void* blob, size_t size, const std::string& compat,
                              Program* out, std::string* error) {
  if (size < sizeof(kMagic) || std::memcmp(blob, kMagic, sizeof(kMagic)) != 0) {
    *error = "not an npu-reference blob";
    return TSR_ERR_INVALID_ARGUMENT;
  }
  Reader r(static_cast<const char*>(blob) + sizeof(kMagic), size - sizeof(kMagic));
  std::string blob_compat;
  if (!r.Str(&blob_compat) || blob_compat != compat) {
    *error = "blob compiled for '" + blob_compat + "', this device is '" + compat + "'";
    return TSR_ERR_INVALID_ARGUMENT;
  }
  Program p;
  uint64_t n_slots = 0, n_code = 0;
  bool ok = r.Pod(&p.n_inputs) && r.Pod(&p.n_outputs) && r.Pod(&p.n_weights) &&
            r.Pod(&p.scratch_bytes) && r.Pod(&n_slots) && n_slots < (1u << 24);
  for (uint64_t i = 0; ok && i < n_slots; ++i) {
    Slot s;
    uint64_t nd = 0;
    ok = r.Str(&s.name) && r.Pod(&s.dtype) && r.Pod(&s.kind) && r.Pod(&s.index) &&
         r.Pod(&s.offset) && r.Pod(&nd) && nd <= TSR_MAX_DIMS;
    for (uint64_t d = 0; ok && d < nd; ++d) ok = r.Pod(&s.shape.emplace_back());
    p.slots.push_back(std::move(s));
  }
  ok = ok && r.Pod(&n_code) && n_code < (1u << 24);
  for (uint64_t i = 0; ok && i < n_code; ++i) {
    Instr ins;
    uint64_t ni = 0;
    ok = r.Pod(&ins.op) && r.Pod(&ins.out) && r.Pod(&ni) && ni <= TSR_MAX_INPUTS;
    for (uint64_t k = 0; ok && k < ni; ++k) ok = r.Pod(&ins.in.emplace_back());
    ok = ok && r.Pod(&ins.ip) && r.Pod(&ins.fp);
    const int32_t ns = static_cast<int32_t>(p.slots.size());
    ok = ok && ins.out >= 0 && ins.out < ns;
    for (int32_t x : ins.in) ok = ok && x >= -1 && x < ns;
    p.code.push_back(std::move(ins));
  }
  // The same checks as a fresh compile: a corrupt blob never reaches the simulator.
  for (size_t i = 0; ok && i < p.code.size(); ++i) ok = CheckInstr(p, p.code[i], error);
  if (!ok || !r.done()) {
    *error = "truncated or corrupt npu-reference blob" + (error->empty() ? "" : ": " + *error);
    return TSR_ERR_INVALID_ARGUMENT;
  }
  *out = std::move(p);
  return TSR_OK;
}

// ---------------------------------------------------------------------------------------------
// The simulator: every instruction reads f16 (or int8 / int32) operands, computes in f32 with
// f32 accumulation, and rounds its result to f16, as the device's vector unit would.

namespace {

struct Machine {
  const Program& p;
  std::vector<uint8_t*> ptr;  // per slot

  std::vector<float> Load(int32_t s) const {
    const Slot& sl = p.slots[s];
    std::vector<float> v(static_cast<size_t>(sl.Numel()));
    const uint8_t* src = ptr[s];
    if (sl.dtype == TSR_DTYPE_Q8_B32) {  // value = d * q, blocks of 32
      for (size_t b = 0; b < v.size() / TSR_QBLOCK; ++b) {
        const uint8_t* blk = src + b * TSR_BLOCK_Q8_BYTES;
        uint16_t d;
        std::memcpy(&d, blk, 2);
        const float scale = HalfToFloat(d);
        for (int i = 0; i < TSR_QBLOCK; ++i)
          v[b * TSR_QBLOCK + i] = scale * static_cast<int8_t>(blk[2 + i]);
      }
    } else {
      for (size_t i = 0; i < v.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        v[i] = HalfToFloat(h);
      }
    }
    return v;
  }
  const int32_t* Ints(int32_t s) const { return reinterpret_cast<const int32_t*>(ptr[s]); }
  void Store(int32_t s, const std::vector<float>& v) const {
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = FloatToHalf(v[i]);
      std::memcpy(ptr[s] + 2 * i, &h, 2);
    }
  }
};

float Gelu(float x) {
  return 0.5f * x * (1.f + std::erf(x / std::sqrt(2.f)));
}
float GeluTanh(float x) {
  return 0.5f * x * (1.f + std::tanh(0.7978845608f * (x + 0.044715f * x * x * x)));
}
float Silu(float x) {
  return x / (1.f + std::exp(-x));
}

float Unary(int32_t op, float x, const float* fp) {
  switch (op) {
    case TSR_OP_SCALE: return x * fp[0] + fp[1];
    case TSR_OP_SILU: return Silu(x);
    case TSR_OP_GELU: return Gelu(x);
    case TSR_OP_GELU_TANH: return GeluTanh(x);
    case TSR_OP_RELU: return x > 0 ? x : 0;
    case TSR_OP_TANH: return std::tanh(x);
    case TSR_OP_SIGMOID: return 1.f / (1.f + std::exp(-x));
    case TSR_OP_SOFTCAP: return fp[0] * std::tanh(x / fp[0]);
    default: return x;
  }
}

float Binary(int32_t op, float a, float b) {
  switch (op) {
    case TSR_OP_ADD: return a + b;
    case TSR_OP_SUB: return a - b;
    case TSR_OP_MUL: return a * b;
    case TSR_OP_DIV: return a / b;
    case TSR_OP_SWIGLU: return Silu(a) * b;
    case TSR_OP_GEGLU: return GeluTanh(a) * b;
    default: return a;
  }
}

void MatMul(const Machine& m, const Instr& ins, std::vector<float>* y) {
  const Slot& w = m.p.slots[ins.in[1]];
  const int64_t n = w.shape[0], k = w.shape[1];
  const std::vector<float> a = m.Load(ins.in[0]), wt = m.Load(ins.in[1]);
  std::vector<float> bias;
  if (ins.in.size() > 2 && ins.in[2] >= 0) bias = m.Load(ins.in[2]);
  const int64_t rows = static_cast<int64_t>(a.size()) / k;
  y->assign(static_cast<size_t>(rows * n), 0.f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c) {
      float acc = 0;
      for (int64_t j = 0; j < k; ++j) acc += a[r * k + j] * wt[c * k + j];
      (*y)[r * n + c] = acc + (bias.empty() ? 0.f : bias[c]);
    }
}

void Norm(const Machine& m, const Instr& ins, std::vector<float>* y) {
  *y = m.Load(ins.in[0]);
  const int64_t d = m.p.slots[ins.in[0]].shape.back();
  std::vector<float> w, b;
  if (ins.in.size() > 1 && ins.in[1] >= 0) w = m.Load(ins.in[1]);
  if (ins.in.size() > 2 && ins.in[2] >= 0) b = m.Load(ins.in[2]);
  for (size_t r = 0; r < y->size() / d; ++r) {
    float* x = y->data() + r * d;
    float mean = 0, sq = 0;
    for (int64_t i = 0; i < d; ++i) mean += x[i];
    mean /= static_cast<float>(d);
    const bool rms = ins.op == TSR_OP_RMS_NORM;
    for (int64_t i = 0; i < d; ++i) {
      const float c = rms ? x[i] : x[i] - mean;
      sq += c * c;
    }
    const float inv = 1.f / std::sqrt(sq / static_cast<float>(d) + ins.fp[0]);
    for (int64_t i = 0; i < d; ++i) {
      const float c = (rms ? x[i] : x[i] - mean) * inv;
      const float g = w.empty() ? 1.f : (rms ? w[i] + ins.fp[1] : w[i]);
      x[i] = c * g + (b.empty() ? 0.f : b[i]);
    }
  }
}

void Rope(const Machine& m, const Instr& ins, std::vector<float>* y) {
  *y = m.Load(ins.in[0]);
  const Slot& xs = m.p.slots[ins.in[0]];
  const int64_t t_len = xs.shape[0], h = xs.shape[1], d = xs.shape[2], rot = ins.ip[1];
  const int32_t* pos = m.Ints(ins.in[1]);
  const std::vector<float> inv = m.Load(ins.in[2]);
  for (int64_t t = 0; t < t_len; ++t)
    for (int64_t i = 0; i < rot / 2; ++i) {
      const float angle = static_cast<float>(pos[t]) * inv[i];
      const float c = std::cos(angle) * ins.fp[0], s = std::sin(angle) * ins.fp[0];
      const int64_t i0 = ins.ip[0] == 0 ? i : 2 * i, i1 = ins.ip[0] == 0 ? i + rot / 2 : 2 * i + 1;
      for (int64_t hh = 0; hh < h; ++hh) {
        float* x = y->data() + (t * h + hh) * d;
        const float a = x[i0], b = x[i1];
        x[i0] = a * c - b * s;
        x[i1] = b * c + a * s;
      }
    }
}

void Softmax(const Machine& m, const Instr& ins, std::vector<float>* y) {
  *y = m.Load(ins.in[0]);
  const int64_t d = m.p.slots[ins.in[0]].shape.back();
  for (size_t r = 0; r < y->size() / d; ++r) {
    float* x = y->data() + r * d;
    float mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < d; ++i) mx = std::max(mx, x[i] * ins.fp[0]);
    for (int64_t i = 0; i < d; ++i) sum += (x[i] = std::exp(x[i] * ins.fp[0] - mx));
    for (int64_t i = 0; i < d; ++i) x[i] /= sum;
  }
}

// One sequence's queries against its keys, both already in the NPU's contiguous head-major
// layout: kp[Hkv][k_len][D], vp[Hkv][k_len][Dv] (one head's keys are one stream). Query i sits at
// position k_len - q_len + i (causal alignment to the end of the keys).
void AttendSequence(const Instr& ins, const std::vector<float>& q, int64_t q0, int64_t q_len,
                    int64_t hq, int64_t hkv, int64_t d, int64_t dv, const std::vector<float>& kp,
                    const std::vector<float>& vp, int64_t k_len, std::vector<float>* y) {
  std::vector<float> score(static_cast<size_t>(k_len));
  for (int64_t i = 0; i < q_len; ++i)
    for (int64_t h = 0; h < hq; ++h) {
      const int64_t g = h / (hq / hkv), p = k_len - q_len + i;
      const float* qr = &q[((q0 + i) * hq + h) * d];
      float mx = -INFINITY;
      for (int64_t j = 0; j < k_len; ++j) {
        const bool visible = (!ins.ip[0] || j <= p) && (ins.ip[1] <= 0 || p - j < ins.ip[1]);
        float acc = 0;
        for (int64_t c = 0; c < d; ++c) acc += qr[c] * kp[(g * k_len + j) * d + c];
        acc *= ins.fp[0];
        if (ins.fp[1] > 0) acc = ins.fp[1] * std::tanh(acc / ins.fp[1]);
        score[j] = visible ? acc : -INFINITY;
        mx = std::max(mx, score[j]);
      }
      float* o = &(*y)[((q0 + i) * hq + h) * dv];
      if (mx == -INFINITY) continue;  // no visible key: zeros
      float sum = 0;
      for (int64_t j = 0; j < k_len; ++j) sum += (score[j] = std::exp(score[j] - mx));
      for (int64_t j = 0; j < k_len; ++j)
        for (int64_t c = 0; c < dv; ++c) o[c] += score[j] / sum * vp[(g * k_len + j) * dv + c];
    }
}

// Dense varlen attention. K and V of each sequence are first packed into the NPU's own
// contiguous layout [Hkv][Tk][D] (head-major) in scratch, then each query row scans its head's
// stream.
bool Attention(const Machine& m, const Instr& ins, std::vector<float>* y, std::string* error) {
  const Slot &qs = m.p.slots[ins.in[0]], &ks = m.p.slots[ins.in[1]], &vs = m.p.slots[ins.in[2]];
  const int64_t hq = qs.shape[1], d = qs.shape[2], hkv = ks.shape[1], dv = vs.shape[2];
  const int64_t n_seq = m.p.slots[ins.in[3]].Numel() - 1;
  const std::vector<float> q = m.Load(ins.in[0]), k = m.Load(ins.in[1]), v = m.Load(ins.in[2]);
  const int32_t *cu_q = m.Ints(ins.in[3]), *cu_k = m.Ints(ins.in[4]);
  y->assign(static_cast<size_t>(qs.shape[0] * hq * dv), 0.f);
  std::vector<float> kp, vp;
  for (int64_t s = 0; s < n_seq; ++s) {
    const int64_t q0 = cu_q[s], q_len = cu_q[s + 1] - q0, k0 = cu_k[s], k_len = cu_k[s + 1] - k0;
    if (q_len < 0 || k_len < 0 || q0 + q_len > qs.shape[0] || k0 + k_len > ks.shape[0])
      return Fail(error, "ATTENTION: cu_q/cu_k out of range");
    kp.assign(static_cast<size_t>(hkv * k_len * d), 0.f);
    vp.assign(static_cast<size_t>(hkv * k_len * dv), 0.f);
    for (int64_t j = 0; j < k_len; ++j)
      for (int64_t h = 0; h < hkv; ++h) {
        std::copy_n(&k[((k0 + j) * hkv + h) * d], d, &kp[(h * k_len + j) * d]);
        std::copy_n(&v[((k0 + j) * hkv + h) * dv], dv, &vp[(h * k_len + j) * dv]);
      }
    AttendSequence(ins, q, q0, q_len, hq, hkv, d, dv, kp, vp, k_len, y);
  }
  return true;
}

// Byte offset of token slot `o` of `block`, head `h`, in a pool of the NPU's own KV layout:
// per block head-major [Hkv][BS][D] f16, so one head's keys of a block are one contiguous run.
uint64_t KvOffset(const Slot& cache, int64_t block, int64_t h, int64_t o) {
  const int64_t bs = cache.shape[1], hkv = cache.shape[2], d = cache.shape[3];
  return static_cast<uint64_t>(((block * hkv + h) * bs + o) * d) * 2;
}

// KV_WRITE, in place into the pool (the host passes it by handle): row t goes to slot
// slots[t] = block * BS + offset; -1 (bucket padding) is skipped. f16 rows are stored as they are.
bool KvWrite(const Machine& m, const Instr& ins, std::string* error) {
  const Slot &cache = m.p.slots[ins.in[0]], &rows = m.p.slots[ins.in[1]];
  const int64_t t_len = rows.shape[0], hkv = rows.shape[1], d = rows.shape[2];
  const int64_t n_slots = cache.shape[0] * cache.shape[1];
  const int32_t* slots = m.Ints(ins.in[2]);
  for (int64_t t = 0; t < t_len; ++t) {
    if (slots[t] == -1) continue;
    if (slots[t] < 0 || slots[t] >= n_slots)
      return Fail(error, "KV_WRITE: slot " + std::to_string(slots[t]) + " is outside the " +
                             std::to_string(n_slots) + "-slot cache");
    const int64_t block = slots[t] / cache.shape[1], o = slots[t] % cache.shape[1];
    for (int64_t h = 0; h < hkv; ++h)
      std::memcpy(m.ptr[ins.out] + KvOffset(cache, block, h, o),
                  m.ptr[ins.in[1]] + (t * hkv + h) * d * 2, static_cast<size_t>(d) * 2);
  }
  return true;
}

// PAGED_ATTENTION over pools in the NPU layout: each sequence's blocks are gathered head by head
// (whole contiguous runs of BS keys) into scratch, then attended as dense attention. Sequences
// with no query (bucket padding: cu_q repeats its last entry) are skipped.
bool PagedAttention(const Machine& m, const Instr& ins, std::vector<float>* y, std::string* error) {
  const Slot &qs = m.p.slots[ins.in[0]], &kc = m.p.slots[ins.in[1]], &vc = m.p.slots[ins.in[2]];
  const Slot& table_slot = m.p.slots[ins.in[3]];
  const int64_t hq = qs.shape[1], d = qs.shape[2], hkv = kc.shape[2], dv = vc.shape[3];
  const int64_t n_blocks = kc.shape[0], bs = kc.shape[1];
  const int64_t n_seq = table_slot.shape[0], max_blocks = table_slot.shape[1];
  const std::vector<float> q = m.Load(ins.in[0]);
  const int32_t *table = m.Ints(ins.in[3]), *kv_lens = m.Ints(ins.in[4]), *cu_q = m.Ints(ins.in[5]);
  y->assign(static_cast<size_t>(qs.shape[0] * hq * dv), 0.f);
  std::vector<float> kp, vp;
  auto gather = [&](const uint8_t* pool, const Slot& cache, int64_t dim, int64_t k_len,
                    const int32_t* row, std::vector<float>* out) {
    out->assign(static_cast<size_t>(hkv * k_len * dim), 0.f);
    for (int64_t h = 0; h < hkv; ++h)
      for (int64_t j = 0; j < k_len; ++j) {
        const uint8_t* src = pool + KvOffset(cache, row[j / bs], h, j % bs);
        for (int64_t c = 0; c < dim; ++c) {
          uint16_t x;
          std::memcpy(&x, src + 2 * c, 2);
          (*out)[(h * k_len + j) * dim + c] = HalfToFloat(x);
        }
      }
  };
  for (int64_t s = 0; s < n_seq; ++s) {
    const int64_t q0 = cu_q[s], q_len = cu_q[s + 1] - q0, k_len = kv_lens[s];
    if (q_len < 0 || q0 < 0 || q0 + q_len > qs.shape[0])
      return Fail(error, "PAGED_ATTENTION: cu_q out of range");
    if (q_len == 0) continue;
    if (k_len < q_len || k_len > max_blocks * bs)
      return Fail(error, "PAGED_ATTENTION: kv_lens[" + std::to_string(s) +
                             "] = " + std::to_string(k_len) + " does not fit the block table");
    const int32_t* row = table + s * max_blocks;
    for (int64_t b = 0; b < (k_len + bs - 1) / bs; ++b)
      if (row[b] < 0 || row[b] >= n_blocks)
        return Fail(error, "PAGED_ATTENTION: block_table[" + std::to_string(s) + ", " +
                               std::to_string(b) + "] is not a block of the cache");
    gather(m.ptr[ins.in[1]], kc, d, k_len, row, &kp);
    gather(m.ptr[ins.in[2]], vc, dv, k_len, row, &vp);
    AttendSequence(ins, q, q0, q_len, hq, hkv, d, dv, kp, vp, k_len, y);
  }
  return true;
}

bool Step(const Machine& m, const Instr& ins, std::string* error) {
  std::vector<float> y;
  switch (ins.op) {
    case TSR_OP_MATMUL: MatMul(m, ins, &y); break;
    case TSR_OP_RMS_NORM:
    case TSR_OP_LAYER_NORM: Norm(m, ins, &y); break;
    case TSR_OP_ROPE: Rope(m, ins, &y); break;
    case TSR_OP_SOFTMAX: Softmax(m, ins, &y); break;
    case TSR_OP_ATTENTION:
      if (!Attention(m, ins, &y, error)) return false;
      break;
    case TSR_OP_KV_WRITE: return KvWrite(m, ins, error);  // in place: nothing to store
    case TSR_OP_PAGED_ATTENTION:
      if (!PagedAttention(m, ins, &y, error)) return false;
      break;
    case TSR_OP_COPY: y = m.Load(ins.in[0]); break;
    case TSR_OP_ADD:
    case TSR_OP_SUB:
    case TSR_OP_MUL:
    case TSR_OP_DIV:
    case TSR_OP_SWIGLU:
    case TSR_OP_GEGLU: {
      y = m.Load(ins.in[0]);
      const std::vector<float> b = m.Load(ins.in[1]);
      for (size_t i = 0; i < y.size(); ++i) y[i] = Binary(ins.op, y[i], b[i % b.size()]);
      break;
    }
    default:
      y = m.Load(ins.in[0]);
      for (float& x : y) x = Unary(ins.op, x, ins.fp);
  }
  if (static_cast<int64_t>(y.size()) != m.p.slots[ins.out].Numel())
    return Fail(error, "internal: result size of op " + std::to_string(ins.op));
  m.Store(ins.out, y);
  return true;
}

}  // namespace

tsr_status RunProgram(const Program& p, uint8_t* const* inputs, uint8_t* const* outputs,
                      uint8_t* const* weights, uint8_t* scratch, std::string* error) {
  Machine m{p, {}};
  for (const Slot& s : p.slots) {
    switch (s.kind) {
      case SlotKind::kInput: m.ptr.push_back(inputs[s.index]); break;
      case SlotKind::kOutput: m.ptr.push_back(outputs[s.index]); break;
      case SlotKind::kWeight: m.ptr.push_back(weights[s.index] + s.offset); break;
      case SlotKind::kScratch: m.ptr.push_back(scratch + s.offset); break;
    }
  }
  for (const Instr& ins : p.code)
    if (!Step(m, ins, error)) return TSR_ERR_INTERNAL;
  return TSR_OK;
}

}  // namespace tessera::npu
