// The case catalogue. Sizes 1, 3, 17 and 4097 (4128 = 129 blocks where the innermost dim must be
// a multiple of 32) hit remainder loops, single-element edges and multi-block paths of SIMD
// kernels; every case stays small enough that the whole suite runs in seconds in Debug.
#include "cases.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>

namespace tessera::conformance {
namespace {

using Shape = std::vector<int64_t>;
constexpr Layout kContig = Layout::kContiguous;
constexpr Layout kPadded = Layout::kPaddedRows;
constexpr Layout kTransposed = Layout::kTransposed;

int64_t Numel(const Shape& s) {
  return std::accumulate(s.begin(), s.end(), int64_t{1}, std::multiplies<>());
}

std::string Tag(const Shape& s) {
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) t += (i ? "x" : "") + std::to_string(s[i]);
  return t;
}

std::string LayoutTag(const char* what, Layout l) {
  if (l == kContig) return "";
  return std::string("_") + what + (l == kPadded ? "Padded" : "Transposed");
}

std::vector<float> Uniform(CaseData* c, int64_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(c->rng);
  return v;
}

Tensor Rand(CaseData* c, tsr_dtype dt, const Shape& shape, float lo = -1.0f, float hi = 1.0f) {
  return Encode(dt, shape, Uniform(c, Numel(shape), lo, hi));
}

int32_t RandInt(CaseData* c, int32_t lo, int32_t hi) {  // inclusive
  return std::uniform_int_distribution<int32_t>(lo, hi)(c->rng);
}

class Catalogue {
 public:
  void Add(std::string name, tsr_op op, bool required, std::function<void(CaseData*)> build) {
    for (char& ch : name) {
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    }
    cases.push_back({std::move(name), op, required, std::move(build)});
  }
  std::vector<OpCase> cases;
};

// ---- MATMUL ----------------------------------------------------------------------------------

void AddMatmul(Catalogue* cat, Shape x, Shape w, tsr_dtype wdt, bool bias, Layout xl = kContig,
               Layout wl = kContig) {
  const std::string name = std::string("MATMUL_") + DtypeName(wdt) + "_x" + Tag(x) + "_w" + Tag(w) +
                           (bias ? "_bias" : "") + LayoutTag("x", xl) + LayoutTag("w", wl);
  cat->Add(name, TSR_OP_MATMUL, xl == kContig && wl == kContig, [=](CaseData* c) {
    c->spec.op = TSR_OP_MATMUL;
    c->Add(Rand(c, TSR_DTYPE_F32, x), xl);
    c->Add(Rand(c, wdt, w), wl);
    if (bias) c->Add(Rand(c, TSR_DTYPE_F32, {w[w.size() - 2]}));
  });
}

void MatmulCases(Catalogue* cat) {
  for (tsr_dtype wdt : {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16}) {
    AddMatmul(cat, {3, 4097}, {17, 4097}, wdt, wdt == TSR_DTYPE_F32);
    AddMatmul(cat, {1, 17}, {1, 17}, wdt, true);
    AddMatmul(cat, {17, 3}, {4097, 3}, wdt, false);
    AddMatmul(cat, {2, 3, 64}, {2, 17, 64}, wdt, false);  // batched
  }
  for (tsr_dtype wdt : {TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}) {
    AddMatmul(cat, {3, 4128}, {17, 4128}, wdt, false);
    AddMatmul(cat, {1, 32}, {3, 32}, wdt, true);
    AddMatmul(cat, {2, 3, 96}, {17, 96}, wdt, true);     // extra leading dim, 2-D weight
    AddMatmul(cat, {2, 3, 64}, {2, 5, 64}, wdt, false);  // batched
  }
  AddMatmul(cat, {4097, 32}, {3, 32}, TSR_DTYPE_Q4_B32, false);  // many rows
  AddMatmul(cat, {3, 4097}, {17, 4097}, TSR_DTYPE_F32, false, kPadded);
  AddMatmul(cat, {17, 64}, {3, 64}, TSR_DTYPE_F32, false, kTransposed);
  AddMatmul(cat, {3, 64}, {17, 64}, TSR_DTYPE_F32, true, kContig, kTransposed);
  AddMatmul(cat, {3, 64}, {17, 64}, TSR_DTYPE_F16, false, kContig, kPadded);
}

// ---- Elementwise -----------------------------------------------------------------------------

const char* OpName(tsr_op op) {
  static const char* const kNames[] = {"NONE",
                                       "MATMUL",
                                       "ADD",
                                       "SUB",
                                       "MUL",
                                       "DIV",
                                       "SCALE",
                                       "SILU",
                                       "GELU",
                                       "GELU_TANH",
                                       "RELU",
                                       "TANH",
                                       "SIGMOID",
                                       "SOFTCAP",
                                       "SWIGLU",
                                       "GEGLU",
                                       "RMS_NORM",
                                       "LAYER_NORM",
                                       "ROPE",
                                       "SOFTMAX",
                                       "ATTENTION",
                                       "KV_WRITE",
                                       "PAGED_ATTENTION",
                                       "GET_ROWS",
                                       "COPY",
                                       "CONCAT",
                                       "CONV1D",
                                       "CONV2D",
                                       "SUM",
                                       "MEAN",
                                       "MAX",
                                       "ARGMAX"};
  return op >= 0 && op < TSR_OP_COUNT ? kNames[op] : "?";
}

void AddBinary(Catalogue* cat, tsr_op op, Shape a, Shape b, Layout al = kContig,
               Layout bl = kContig) {
  const std::string name = std::string(OpName(op)) + "_" + Tag(a) + "_by_" + Tag(b) +
                           LayoutTag("a", al) + LayoutTag("b", bl);
  cat->Add(name, op, al == kContig && bl == kContig, [=](CaseData* c) {
    c->spec.op = op;
    c->Add(Rand(c, TSR_DTYPE_F32, a, -2.0f, 2.0f), al);
    std::vector<float> bv = Uniform(c, Numel(b), 0.25f, 2.0f);  // |b| >= 0.25: DIV stays tame
    for (float& v : bv) v = RandInt(c, 0, 1) ? v : -v;
    c->Add(MakeF32(b, bv), bl);
  });
}

// Unary ops: inputs span [lo, hi] so activations see their tails (exp overflow paths etc.).
void AddUnary(Catalogue* cat, tsr_op op, Shape s, Layout l = kContig) {
  cat->Add(std::string(OpName(op)) + "_" + Tag(s) + LayoutTag("x", l), op, l == kContig,
           [=](CaseData* c) {
             c->spec.op = op;
             float range = 8.0f;
             if (op == TSR_OP_SCALE) {
               c->spec.fparams[0] = 0.37f;
               c->spec.fparams[1] = -1.5f;
             } else if (op == TSR_OP_SOFTCAP) {
               c->spec.fparams[0] = 30.0f;  // Gemma-2 final-logit cap; inputs well past it
               range = 100.0f;
             }
             c->Add(Rand(c, TSR_DTYPE_F32, s, -range, range), l);
           });
}

void AddGated(Catalogue* cat, tsr_op op, Shape s, Layout l = kContig) {
  cat->Add(std::string(OpName(op)) + "_" + Tag(s) + LayoutTag("x", l), op, l == kContig,
           [=](CaseData* c) {
             c->spec.op = op;
             c->Add(Rand(c, TSR_DTYPE_F32, s, -8.0f, 8.0f), l);
             c->Add(Rand(c, TSR_DTYPE_F32, s, -2.0f, 2.0f), l);
           });
}

void ElementwiseCases(Catalogue* cat) {
  for (tsr_op op : {TSR_OP_ADD, TSR_OP_SUB, TSR_OP_MUL, TSR_OP_DIV}) {
    AddBinary(cat, op, {3, 17, 4097}, {3, 17, 4097});
    AddBinary(cat, op, {3, 17, 4097}, {4097});
    AddBinary(cat, op, {17, 3}, {17, 1});
    AddBinary(cat, op, {3, 4, 17}, {3, 1, 17});
    AddBinary(cat, op, {1}, {1});
    AddBinary(cat, op, {17, 33}, {17, 33}, kTransposed, kPadded);
  }
  for (tsr_op op : {TSR_OP_SCALE, TSR_OP_SILU, TSR_OP_GELU, TSR_OP_GELU_TANH, TSR_OP_RELU,
                    TSR_OP_TANH, TSR_OP_SIGMOID, TSR_OP_SOFTCAP}) {
    AddUnary(cat, op, {3, 4097});
    AddUnary(cat, op, {1});
    AddUnary(cat, op, {17, 3});
    AddUnary(cat, op, {17, 33}, kPadded);
  }
  for (tsr_op op : {TSR_OP_SWIGLU, TSR_OP_GEGLU}) {
    AddGated(cat, op, {3, 4097});
    AddGated(cat, op, {1, 1});
    AddGated(cat, op, {17, 3});
    AddGated(cat, op, {17, 33}, kPadded);
  }
}

// ---- Normalization, RoPE, softmax ------------------------------------------------------------

struct NormCase {
  tsr_op op;
  Shape shape;
  bool weight, bias;
  float eps, offset;
  Layout layout = kContig;
};

void AddNorm(Catalogue* cat, NormCase n) {
  std::string name = std::string(OpName(n.op)) + "_" + Tag(n.shape) + (n.weight ? "_w" : "") +
                     (n.bias ? "_b" : "") + (n.offset != 0.0f ? "_offset1" : "") +
                     LayoutTag("x", n.layout);
  cat->Add(name, n.op, n.layout == kContig, [=](CaseData* c) {
    c->spec.op = n.op;
    c->spec.fparams[0] = n.eps;
    c->spec.fparams[1] = n.offset;
    const Shape d = {n.shape.back()};
    c->Add(Rand(c, TSR_DTYPE_F32, n.shape, -2.0f, 3.0f), n.layout);  // nonzero mean
    if (n.weight)
      c->Add(Rand(c, TSR_DTYPE_F32, d, -1.5f, 1.5f));
    else if (n.bias)
      c->AddAbsent();
    if (n.bias) c->Add(Rand(c, TSR_DTYPE_F32, d));
  });
}

struct RopeCase {
  int64_t t, h, d, rot;
  int mode;  // 0 neox, 1 interleaved
  float attn_scale;
  Layout layout = kContig;
};

void AddRope(Catalogue* cat, RopeCase r) {
  std::string name = "ROPE_" + std::string(r.mode ? "interleaved" : "neox") + "_" +
                     Tag({r.t, r.h, r.d}) + "_R" + std::to_string(r.rot) +
                     (r.attn_scale != 1.0f ? "_scaled" : "") + LayoutTag("x", r.layout);
  cat->Add(name, TSR_OP_ROPE, r.layout == kContig, [=](CaseData* c) {
    c->spec.op = TSR_OP_ROPE;
    c->spec.iparams[0] = r.mode;
    c->spec.iparams[1] = r.rot;
    c->spec.fparams[0] = r.attn_scale;
    c->Add(Rand(c, TSR_DTYPE_F32, {r.t, r.h, r.d}), r.layout);
    std::vector<int32_t> pos(static_cast<size_t>(r.t));
    for (int64_t i = 0; i < r.t; ++i) pos[i] = i == 0 ? 4097 : i == 1 ? 0 : RandInt(c, 0, 5000);
    c->Add(MakeI32({r.t}, pos));
    std::vector<float> inv_freq(static_cast<size_t>(r.rot / 2));
    for (int64_t i = 0; i < r.rot / 2; ++i) {
      inv_freq[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / r.rot));
    }
    c->Add(MakeF32({r.rot / 2}, inv_freq));
  });
}

// mask: 0 none, 1 causal (-inf above the diagonal) of `mask_shape`, 2 random finite.
void AddSoftmax(Catalogue* cat, Shape s, float scale, int mask, Shape mask_shape,
                Layout l = kContig) {
  std::string name = "SOFTMAX_" + Tag(s) + (scale != 1.0f ? "_scaled" : "") +
                     (mask ? (mask == 1 ? "_causal" : "_mask") + Tag(mask_shape) : "") +
                     LayoutTag("x", l);
  cat->Add(name, TSR_OP_SOFTMAX, l == kContig, [=](CaseData* c) {
    c->spec.op = TSR_OP_SOFTMAX;
    c->spec.fparams[0] = scale;
    c->Add(Rand(c, TSR_DTYPE_F32, s, -10.0f, 10.0f), l);
    if (mask == 0) return;
    std::vector<float> m = Uniform(c, Numel(mask_shape), -3.0f, 3.0f);
    if (mask == 1) {
      const int64_t cols = mask_shape.back();
      for (int64_t i = 0; i < Numel(mask_shape); ++i) {
        m[i] = (i % cols) > (i / cols) % mask_shape[mask_shape.size() - 2] ? -INFINITY : 0.0f;
      }
    }
    c->Add(MakeF32(mask_shape, m));
  });
}

void NormRopeSoftmaxCases(Catalogue* cat) {
  AddNorm(cat, {TSR_OP_RMS_NORM, {3, 4097}, true, false, 1e-6f, 0.0f});
  AddNorm(cat, {TSR_OP_RMS_NORM, {17, 64}, true, false, 1e-6f, 1.0f});  // Gemma: w + 1
  AddNorm(cat, {TSR_OP_RMS_NORM, {3, 17}, false, false, 1e-5f, 0.0f});
  AddNorm(cat, {TSR_OP_RMS_NORM, {1, 1}, true, false, 1e-6f, 0.0f});
  AddNorm(cat, {TSR_OP_RMS_NORM, {2, 3, 80}, true, false, 1e-6f, 0.0f});
  AddNorm(cat, {TSR_OP_RMS_NORM, {17, 64}, true, false, 1e-6f, 0.0f, kPadded});
  AddNorm(cat, {TSR_OP_LAYER_NORM, {3, 4097}, true, true, 1e-5f, 0.0f});
  AddNorm(cat, {TSR_OP_LAYER_NORM, {17, 64}, false, false, 1e-5f, 0.0f});
  AddNorm(cat, {TSR_OP_LAYER_NORM, {1, 3}, true, true, 1e-5f, 0.0f});
  AddNorm(cat, {TSR_OP_LAYER_NORM, {2, 3, 80}, true, true, 1e-5f, 0.0f});
  AddNorm(cat, {TSR_OP_LAYER_NORM, {17, 64}, true, true, 1e-5f, 0.0f, kPadded});

  AddRope(cat, {17, 3, 64, 64, 0, 1.0f});
  AddRope(cat, {17, 3, 64, 64, 1, 1.0f});
  AddRope(cat, {3, 2, 80, 40, 0, 1.0f});    // partial rotary
  AddRope(cat, {3, 2, 128, 64, 1, 1.0f});   // partial, interleaved
  AddRope(cat, {5, 4, 128, 128, 0, 1.2f});  // YaRN/LongRoPE-style attention scaling
  AddRope(cat, {1, 1, 64, 64, 0, 1.0f});
  AddRope(cat, {17, 3, 64, 64, 0, 1.0f, kPadded});

  AddSoftmax(cat, {3, 4097}, 1.0f, 0, {});
  AddSoftmax(cat, {17, 17}, 0.125f, 1, {17, 17});
  AddSoftmax(cat, {2, 17, 17}, 1.0f, 1, {17, 17});  // mask broadcast over the batch
  AddSoftmax(cat, {1, 1}, 1.0f, 0, {});
  AddSoftmax(cat, {4, 3}, 1.0f, 2, {1, 3});
  AddSoftmax(cat, {17, 33}, 1.0f, 0, {}, kPadded);
}

// ---- Attention -------------------------------------------------------------------------------

struct AttnCase {
  int64_t d, dv, hkv, ratio;  // head dim, value head dim, KV heads, Hq / Hkv
  bool causal;
  int64_t window;
  float softcap;
  std::vector<int32_t> q_lens, k_lens;
  float scale = 0.0f;  // 0: 1/sqrt(d)
  Layout q_layout = kContig;
};

std::string LensTag(const std::vector<int32_t>& v) {
  return Tag(Shape(v.begin(), v.end()));
}

std::vector<int32_t> Prefix(const std::vector<int32_t>& lens) {
  std::vector<int32_t> cu(1, 0);
  for (int32_t l : lens) cu.push_back(cu.back() + l);
  return cu;
}

void AddAttention(Catalogue* cat, AttnCase a) {
  std::string name =
      "ATTENTION_D" + std::to_string(a.d) + (a.dv != a.d ? "_Dv" + std::to_string(a.dv) : "") +
      "_gqa" + std::to_string(a.ratio) + (a.causal ? "_causal" : "_full") +
      (a.window ? "_win" + std::to_string(a.window) : "") + (a.softcap > 0 ? "_cap" : "") + "_q" +
      LensTag(a.q_lens) + "_k" + LensTag(a.k_lens) + LayoutTag("q", a.q_layout);
  cat->Add(name, TSR_OP_ATTENTION, a.q_layout == kContig, [=](CaseData* c) {
    c->spec.op = TSR_OP_ATTENTION;
    c->spec.iparams[0] = a.causal;
    c->spec.iparams[1] = a.window;
    c->spec.fparams[0] = a.scale > 0 ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.d));
    c->spec.fparams[1] = a.softcap;
    const std::vector<int32_t> cu_q = Prefix(a.q_lens), cu_k = Prefix(a.k_lens);
    const float amp = a.softcap > 0 ? 1.5f : 1.0f;  // bigger logits so the cap bends them
    c->Add(Rand(c, TSR_DTYPE_F32, {cu_q.back(), a.hkv * a.ratio, a.d}, -amp, amp), a.q_layout);
    c->Add(Rand(c, TSR_DTYPE_F32, {cu_k.back(), a.hkv, a.d}, -amp, amp));
    c->Add(Rand(c, TSR_DTYPE_F32, {cu_k.back(), a.hkv, a.dv}));
    c->Add(MakeI32({static_cast<int64_t>(cu_q.size())}, cu_q));
    c->Add(MakeI32({static_cast<int64_t>(cu_k.size())}, cu_k));
  });
}

struct PagedCase {
  int64_t d, dv, hkv, ratio, window;
  float softcap;
  int64_t block_size;
  std::vector<int32_t> q_lens, kv_lens;
  tsr_dtype cache_dtype = TSR_DTYPE_F32;
};

void AddPaged(Catalogue* cat, PagedCase p) {
  std::string name = "PAGED_ATTENTION_D" + std::to_string(p.d) +
                     (p.dv != p.d ? "_Dv" + std::to_string(p.dv) : "") + "_gqa" +
                     std::to_string(p.ratio) + (p.window ? "_win" + std::to_string(p.window) : "") +
                     (p.softcap > 0 ? "_cap" : "") + "_bs" + std::to_string(p.block_size) + "_q" +
                     LensTag(p.q_lens) + "_kv" + LensTag(p.kv_lens) + "_" +
                     DtypeName(p.cache_dtype);
  cat->Add(name, TSR_OP_PAGED_ATTENTION, p.cache_dtype == TSR_DTYPE_F32, [=](CaseData* c) {
    c->spec.op = TSR_OP_PAGED_ATTENTION;
    c->spec.iparams[0] = 1;
    c->spec.iparams[1] = p.window;
    c->spec.fparams[0] = 1.0f / std::sqrt(static_cast<float>(p.d));
    c->spec.fparams[1] = p.softcap;
    const int64_t seqs = static_cast<int64_t>(p.kv_lens.size());
    int64_t max_blocks = 0, total_blocks = 0;
    for (int32_t len : p.kv_lens) {
      const int64_t nb = (len + p.block_size - 1) / p.block_size;
      max_blocks = std::max(max_blocks, nb);
      total_blocks += nb;
    }
    // Two spare blocks, and blocks handed out in a shuffled order: tables are not identity maps.
    const int64_t n_blocks = total_blocks + 2;
    std::vector<int32_t> order(static_cast<size_t>(n_blocks));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), c->rng);
    std::vector<int32_t> table(static_cast<size_t>(seqs * max_blocks), 0);
    size_t next = 0;
    for (int64_t s = 0; s < seqs; ++s) {
      for (int64_t b = 0; b * p.block_size < p.kv_lens[s]; ++b)
        table[s * max_blocks + b] = order[next++];
    }
    const std::vector<int32_t> cu_q = Prefix(p.q_lens);
    const float amp = p.softcap > 0 ? 1.5f : 1.0f;
    c->Add(Rand(c, TSR_DTYPE_F32, {cu_q.back(), p.hkv * p.ratio, p.d}, -amp, amp));
    c->Add(Rand(c, p.cache_dtype, {n_blocks, p.block_size, p.hkv, p.d}, -amp, amp));
    c->Add(Rand(c, p.cache_dtype, {n_blocks, p.block_size, p.hkv, p.dv}));
    c->Add(MakeI32({seqs, max_blocks}, table));
    c->Add(MakeI32({seqs}, p.kv_lens));
    c->Add(MakeI32({seqs + 1}, cu_q));
  });
}

void AttentionCases(Catalogue* cat) {
  for (int64_t d : {64, 80, 128}) {
    for (int64_t ratio : {1, 2, 4}) {
      AddAttention(cat, {d, d, 2, ratio, true, 0, 0.0f, {1, 17, 3}, {5, 17, 3}});
    }
  }
  AddAttention(cat, {64, 64, 2, 1, false, 0, 0.0f, {3, 17}, {17, 1}});
  AddAttention(cat, {80, 80, 1, 2, false, 0, 0.0f, {17}, {3}});
  AddAttention(cat, {128, 128, 2, 4, false, 0, 0.0f, {1, 3}, {3, 17}});
  AddAttention(cat, {64, 64, 2, 2, true, 4, 0.0f, {17}, {20}});
  AddAttention(cat, {64, 64, 1, 1, true, 1, 0.0f, {3, 5}, {3, 9}});
  AddAttention(cat, {128, 128, 2, 2, true, 0, 20.0f, {17, 1}, {17, 4}});
  AddAttention(cat, {128, 128, 2, 2, true, 5, 20.0f, {17}, {17}});  // Gemma-2 style
  AddAttention(cat, {64, 64, 1, 4, true, 0, 0.0f, {1}, {4097}});    // decode, long context
  AddAttention(cat, {128, 64, 2, 2, true, 0, 0.0f, {3, 17}, {3, 20}});
  AddAttention(cat, {64, 64, 2, 2, true, 0, 0.0f, {17}, {17}, 0.3f});
  AddAttention(cat, {64, 64, 2, 2, true, 0, 0.0f, {3, 17}, {5, 17}, 0.0f, kPadded});

  AddPaged(cat, {64, 64, 2, 1, 0, 0.0f, 16, {17, 1, 3}, {17, 40, 20}});
  AddPaged(cat, {80, 80, 2, 2, 0, 0.0f, 16, {17, 1, 3}, {17, 40, 20}});
  AddPaged(cat, {128, 128, 1, 4, 0, 0.0f, 16, {17, 1, 3}, {17, 40, 20}});
  AddPaged(cat, {64, 64, 2, 2, 8, 0.0f, 16, {17, 1, 3}, {17, 40, 20}});
  AddPaged(cat, {128, 128, 2, 2, 0, 20.0f, 16, {17, 1}, {17, 33}});
  AddPaged(cat, {64, 64, 1, 4, 0, 0.0f, 16, {1}, {4097}});
  AddPaged(cat, {64, 64, 2, 2, 0, 0.0f, 3, {3, 1}, {17, 1}});
  AddPaged(cat, {128, 64, 2, 2, 0, 0.0f, 16, {3}, {20}});
  AddPaged(cat, {64, 64, 2, 2, 0, 0.0f, 16, {17, 1, 3}, {17, 40, 20}, TSR_DTYPE_F16});
}

// ---- KV_WRITE, GET_ROWS, COPY, CONCAT --------------------------------------------------------

void AddKvWrite(Catalogue* cat, Shape cache, int64_t t, tsr_dtype dt) {
  std::string name = "KV_WRITE_" + Tag(cache) + "_T" + std::to_string(t) + "_" + DtypeName(dt);
  cat->Add(name, TSR_OP_KV_WRITE, dt == TSR_DTYPE_F32, [=](CaseData* c) {
    c->spec.op = TSR_OP_KV_WRITE;
    c->spec.out_aliases_input = 0;
    c->spec.out_dtype = dt;
    std::vector<int32_t> slots(static_cast<size_t>(cache[0] * cache[1]));
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), c->rng);
    slots.resize(static_cast<size_t>(t));
    for (size_t i = 1; i < slots.size(); i += 5) slots[i] = -1;  // skipped rows
    c->Add(Rand(c, dt, cache));
    c->Add(Rand(c, TSR_DTYPE_F32, {t, cache[2], cache[3]}, -3.0f, 3.0f));
    c->Add(MakeI32({t}, slots));
  });
}

void AddGetRows(Catalogue* cat, Shape table, std::vector<int32_t> ids, tsr_dtype dt,
                Layout l = kContig) {
  std::string name = "GET_ROWS_" + std::string(DtypeName(dt)) + "_" + Tag(table) + "_T" +
                     std::to_string(ids.size()) + LayoutTag("table", l);
  cat->Add(name, TSR_OP_GET_ROWS, l == kContig, [=](CaseData* c) {
    c->spec.op = TSR_OP_GET_ROWS;
    c->Add(Rand(c, dt, table, -2.0f, 2.0f), l);
    std::vector<int32_t> v = ids;
    for (int32_t& id : v) id = id >= 0 ? id : RandInt(c, 0, static_cast<int32_t>(table[0] - 1));
    c->Add(MakeI32({static_cast<int64_t>(v.size())}, v));
  });
}

// Values that exercise f16/bf16 rounding: exact ties (to even), the f16 overflow edge, f16
// subnormals. No f32 subnormal inputs: a kernel running with denormals-are-zero is legitimate.
std::vector<float> CastSpecials() {
  return {0.0f,
          -0.0f,
          1.0f,
          1.0f + 0x1p-11f,
          1.0f + 3 * 0x1p-11f,
          1.0f + 0x1p-8f,
          1.0f + 3 * 0x1p-8f,
          -(1.0f + 0x1p-8f),
          65504.0f,
          65519.0f,
          65520.0f,
          -70000.0f,
          1e-8f,
          0x1p-25f,
          3 * 0x1p-25f,
          0x1p-24f,
          -6.1e-5f,
          3.14159265f,
          1e30f,
          -0.1f};
}

// Rows of 32 that exercise the quantizers' edges, then random rows of varied magnitude.
std::vector<float> QuantSpecials(CaseData* c, int64_t rows, int64_t cols) {
  std::vector<float> v = Uniform(c, rows * cols);
  auto row = [&](int64_t r) { return v.data() + r * cols; };
  const int64_t n = std::min<int64_t>(cols, 32);
  if (rows > 0) std::fill_n(row(0), n, 0.0f);  // d = 0
  if (rows > 1) {  // Q8 d == 1 exactly: x/d lands on exact .5 ties (round away from zero)
    const float tie[] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 126.5f, -1.5f, 3.5f, -100.5f};
    for (int64_t i = 0; i < n; ++i) row(1)[i] = i < 9 ? tie[i] : static_cast<float>(i) - 16.0f;
  }
  if (rows > 2) {  // Q4 d == 1 exactly (m = -8): x/d + 8.5 hits exact integers and halves
    const float tie[] = {-8.0f, -7.5f, -0.5f, 0.5f, 6.5f, 7.5f, 7.0f, 3.25f, -4.75f};
    for (int64_t i = 0; i < n; ++i) row(2)[i] = i < 9 ? tie[i] : 0.25f * (i % 16) - 2.0f;
  }
  if (rows > 3) {
    std::fill_n(row(3), n, 0.0f);
    row(3)[5] = -0.7f;
  }                                             // one nonzero
  if (rows > 4) std::fill_n(row(4), n, -3.0f);  // constant
  if (rows > 5)
    for (int64_t i = 0; i < cols; ++i) row(5)[i] *= 1e-3f;  // f16-subnormal scale
  if (rows > 6)
    for (int64_t i = 0; i < cols; ++i) row(6)[i] *= 1e3f;
  return v;
}

enum class CopyData { kRandom, kCastSpecials, kQuantSpecials };

void AddCopy(Catalogue* cat, tsr_dtype from, tsr_dtype to, Shape s, Layout l, CopyData data,
             bool required = true) {
  std::string name = std::string("COPY_") + DtypeName(from) + "_to_" + DtypeName(to) + "_" +
                     Tag(s) + LayoutTag("x", l) + (data == CopyData::kRandom ? "" : "_edges");
  cat->Add(name, TSR_OP_COPY, required, [=](CaseData* c) {
    c->spec.op = TSR_OP_COPY;
    c->spec.out_dtype = to;
    std::vector<float> v = Uniform(c, Numel(s), -4.0f, 4.0f);
    if (data == CopyData::kCastSpecials) {
      const std::vector<float> sp = CastSpecials();
      std::copy_n(sp.begin(), std::min(sp.size(), v.size()), v.begin());
    } else if (data == CopyData::kQuantSpecials) {
      v = QuantSpecials(c, Numel(s) / s.back(), s.back());
    }
    if (from == TSR_DTYPE_I32)
      for (float& x : v) x = std::round(x * 1000.0f);
    c->Add(Encode(from, s, v), l);
  });
}

void AddConcat(Catalogue* cat, Shape a, Shape b, int64_t axis, Layout al = kContig) {
  std::string name =
      "CONCAT_" + Tag(a) + "_" + Tag(b) + "_axis" + std::to_string(axis) + LayoutTag("a", al);
  cat->Add(name, TSR_OP_CONCAT, al == kContig, [=](CaseData* c) {
    c->spec.op = TSR_OP_CONCAT;
    c->spec.iparams[0] = axis;
    c->Add(Rand(c, TSR_DTYPE_F32, a), al);
    c->Add(Rand(c, TSR_DTYPE_F32, b));
  });
}

void DataMovementCases(Catalogue* cat) {
  AddKvWrite(cat, {5, 16, 2, 64}, 17, TSR_DTYPE_F32);
  AddKvWrite(cat, {2, 16, 2, 64}, 1, TSR_DTYPE_F32);
  AddKvWrite(cat, {7, 3, 1, 80}, 17, TSR_DTYPE_F32);
  AddKvWrite(cat, {5, 16, 2, 64}, 17, TSR_DTYPE_F16);

  for (tsr_dtype dt :
       {TSR_DTYPE_F32, TSR_DTYPE_F16, TSR_DTYPE_BF16, TSR_DTYPE_Q8_B32, TSR_DTYPE_Q4_B32}) {
    AddGetRows(cat, {17, IsQuantized(dt) ? 4128 : 4097}, {16, 0, 16}, dt);
    AddGetRows(cat, {17, 64}, std::vector<int32_t>(17, -1), dt);
  }
  AddGetRows(cat, {1, 1}, {0}, TSR_DTYPE_F32);
  AddGetRows(cat, {4097, 3}, std::vector<int32_t>(17, -1), TSR_DTYPE_F32);
  AddGetRows(cat, {17, 64}, {3, 1, 4}, TSR_DTYPE_F32, kPadded);

  using D = CopyData;
  const tsr_dtype f32 = TSR_DTYPE_F32, f16 = TSR_DTYPE_F16, bf16 = TSR_DTYPE_BF16;
  const tsr_dtype q8 = TSR_DTYPE_Q8_B32, q4 = TSR_DTYPE_Q4_B32;
  AddCopy(cat, f32, f16, {3, 17}, kContig, D::kCastSpecials);
  AddCopy(cat, f32, bf16, {3, 17}, kContig, D::kCastSpecials);
  AddCopy(cat, f32, f16, {4097}, kContig, D::kRandom);
  AddCopy(cat, f16, f32, {3, 17}, kContig, D::kCastSpecials);
  AddCopy(cat, bf16, f32, {3, 17}, kContig, D::kCastSpecials);
  AddCopy(cat, f32, f32, {1}, kContig, D::kRandom);
  AddCopy(cat, f32, f32, {17, 33}, kTransposed, D::kRandom);  // make contiguous: in the ABI
  AddCopy(cat, f32, f32, {3, 17, 33}, kPadded, D::kRandom);
  AddCopy(cat, f16, f32, {17, 33}, kTransposed, D::kRandom, false);
  AddCopy(cat, f32, bf16, {17, 33}, kPadded, D::kRandom, false);
  AddCopy(cat, TSR_DTYPE_I32, TSR_DTYPE_I32, {17}, kContig, D::kRandom, false);
  for (tsr_dtype q : {q8, q4}) {
    AddCopy(cat, f32, q, {17, 32}, kContig, D::kQuantSpecials);
    AddCopy(cat, f32, q, {3, 4128}, kContig, D::kQuantSpecials);
    AddCopy(cat, q, f32, {17, 96}, kContig, D::kQuantSpecials);
  }

  AddConcat(cat, {3, 17}, {3, 5}, 1);
  AddConcat(cat, {3, 17}, {1, 17}, 0);
  AddConcat(cat, {2, 3, 4}, {2, 17, 4}, 1);
  AddConcat(cat, {1}, {4097}, 0);
  AddConcat(cat, {2, 3, 4}, {2, 3, 1}, 2);
  AddConcat(cat, {17, 33}, {17, 2}, 1, kTransposed);
}

// ---- Convolutions and reductions -------------------------------------------------------------

void AddConv(Catalogue* cat, Shape x, Shape w, bool bias, std::vector<int64_t> params) {
  const bool one_d = x.size() == 3;
  std::string name = std::string(one_d ? "CONV1D_" : "CONV2D_") + Tag(x) + "_w" + Tag(w) +
                     (bias ? "_bias" : "") + "_p" + Tag(params);
  const tsr_op op = one_d ? TSR_OP_CONV1D : TSR_OP_CONV2D;
  cat->Add(name, op, true, [=](CaseData* c) {
    c->spec.op = op;
    std::copy(params.begin(), params.end(), c->spec.iparams);
    c->Add(Rand(c, TSR_DTYPE_F32, x));
    c->Add(Rand(c, TSR_DTYPE_F32, w));
    if (bias) c->Add(Rand(c, TSR_DTYPE_F32, {w[0]}));
  });
}

void AddReduce(Catalogue* cat, tsr_op op, Shape s, float shift, Layout l = kContig) {
  std::string name =
      std::string(OpName(op)) + "_" + Tag(s) + (shift != 0 ? "_negative" : "") + LayoutTag("x", l);
  cat->Add(name, op, l == kContig, [=](CaseData* c) {
    c->spec.op = op;
    c->Add(Rand(c, TSR_DTYPE_F32, s, -1.0f + shift, 1.0f + shift), l);
  });
}

void ConvReduceCases(Catalogue* cat) {
  // CONV1D iparams: stride, padding, dilation, groups.
  AddConv(cat, {2, 4, 17}, {6, 4, 3}, true, {1, 1, 1, 1});
  AddConv(cat, {1, 4, 17}, {4, 2, 3}, false, {2, 0, 2, 2});
  AddConv(cat, {1, 3, 17}, {3, 1, 4}, true, {1, 3, 1, 3});    // depthwise, even kernel
  AddConv(cat, {1, 3, 4097}, {8, 3, 3}, true, {2, 1, 1, 1});  // Whisper-style front end
  AddConv(cat, {1, 3, 1}, {5, 3, 1}, true, {1, 0, 1, 1});
  // CONV2D iparams: stride h/w, pad h/w, dilation h/w, groups.
  AddConv(cat, {1, 3, 17, 17}, {4, 3, 3, 3}, true, {1, 1, 1, 1, 1, 1, 1});
  AddConv(cat, {2, 4, 17, 3}, {6, 2, 3, 1}, false, {2, 1, 0, 1, 2, 1, 2});
  AddConv(cat, {1, 3, 17, 17}, {8, 3, 4, 4}, true, {4, 4, 0, 0, 1, 1, 1});  // patch embedding
  AddConv(cat, {1, 4, 5, 5}, {4, 1, 3, 3}, true, {1, 1, 1, 1, 1, 1, 4});    // depthwise
  AddConv(cat, {1, 17, 3, 3}, {5, 17, 1, 1}, false, {1, 1, 0, 0, 1, 1, 1});

  for (tsr_op op : {TSR_OP_SUM, TSR_OP_MEAN, TSR_OP_MAX}) {
    AddReduce(cat, op, {3, 17, 4097}, 0.0f);
    AddReduce(cat, op, {1}, 0.0f);
    AddReduce(cat, op, {17, 1}, 0.0f);
    AddReduce(cat, op, {3, 3}, -5.0f);
    AddReduce(cat, op, {17, 33}, 0.0f, kTransposed);
  }
}

// ---- ARGMAX ----------------------------------------------------------------------------------

// Row r of an ARGMAX case: pattern r % kArgmaxPatterns, covering the op's rules (lowest index on
// ties, NaN never wins, 0 for a row with nothing above -inf) wherever they can sit in a row.
constexpr int kArgmaxPatterns = 12;

void FillArgmaxRow(CaseData* c, int pattern, float* row, int64_t n) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> u = Uniform(c, n);
  std::copy(u.begin(), u.end(), row);
  const int64_t a = RandInt(c, 0, static_cast<int32_t>(n - 1));  // a planted position
  const int64_t b = RandInt(c, 0, static_cast<int32_t>(n - 1));  // another (maybe == a)
  switch (pattern) {
    case 0: break;                             // random: ties improbable
    case 1: row[a] = row[b] = 2.0f; break;     // a tie, wherever it falls
    case 2: std::fill_n(row, n, -inf); break;  // -> 0
    case 3: std::fill_n(row, n, nan); break;   // -> 0
    case 4:                                    // NaN and -inf only -> 0
      for (int64_t i = 0; i < n; ++i) row[i] = i % 3 == 1 ? nan : -inf;
      break;
    case 5:  // NaN every 7th value (also next to the max): they never win
      for (int64_t i = 0; i < n; i += 7) row[i] = nan;
      if (a % 7 != 0) row[a] = 3.0f;
      break;
    case 6:  // +inf twice, NaN before them: the first +inf
      row[0] = nan;
      row[a] = row[b] = inf;
      break;
    case 7: row[n - 1] = 2.0f; break;          // the last position
    case 8: std::fill_n(row, n, 0.5f); break;  // all equal -> 0
    case 9:                                    // small integers: ties everywhere
      for (int64_t i = 0; i < n; ++i) row[i] = static_cast<float>(RandInt(c, -3, 3));
      break;
    case 10:  // -inf but for one very negative finite value
      std::fill_n(row, n, -inf);
      row[a] = -3.0e38f;
      break;
    default:  // -inf first, NaN elsewhere: the max among huge negatives
      for (int64_t i = 0; i < n; ++i) row[i] = i % 5 == 0 ? nan : -3.0e38f * (0.5f + u[i]);
      row[0] = -inf;
      break;
  }
}

void AddArgmax(Catalogue* cat, Shape s, Layout l = kContig) {
  cat->Add("ARGMAX_" + Tag(s) + LayoutTag("x", l), TSR_OP_ARGMAX, l == kContig, [=](CaseData* c) {
    c->spec.op = TSR_OP_ARGMAX;
    const int64_t n = s.back(), rows = Numel(s) / n;
    std::vector<float> v(static_cast<size_t>(Numel(s)));
    for (int64_t r = 0; r < rows; ++r)
      FillArgmaxRow(c, static_cast<int>(r % kArgmaxPatterns), v.data() + r * n, n);
    c->Add(MakeF32(s, std::move(v)), l);
  });
}

void ArgmaxCases(Catalogue* cat) {
  AddArgmax(cat, {12, 37});
  AddArgmax(cat, {12, 4133});
  AddArgmax(cat, {12, 1});  // rows of 1
  AddArgmax(cat, {1});
  AddArgmax(cat, {4097});
  AddArgmax(cat, {2, 6, 50});
  AddArgmax(cat, {256, 997});    // a batch's worth of rows
  AddArgmax(cat, {12, 151936});  // Qwen2 vocabulary
  AddArgmax(cat, {12, 128256});  // Llama-3 vocabulary
  AddArgmax(cat, {12, 33}, kTransposed);
  AddArgmax(cat, {12, 4097}, kPadded);
}

}  // namespace

const Tensor& CaseData::Add(Tensor t, Layout layout) {
  storage.push_back(std::move(t));
  spec.inputs.push_back({&storage.back(), layout});
  return storage.back();
}

void CaseData::AddAbsent() {
  spec.inputs.push_back({nullptr, Layout::kContiguous});
}

RefNode CaseData::ToRefNode() const {
  RefNode n;
  n.op = spec.op;
  for (const NodeInput& in : spec.inputs) n.inputs.push_back(in.tensor);
  std::copy_n(spec.iparams, TSR_MAX_PARAMS, n.iparams);
  std::copy_n(spec.fparams, TSR_MAX_PARAMS, n.fparams);
  n.out_dtype = spec.out_dtype;
  return n;
}

const std::vector<OpCase>& AllCases() {
  static const std::vector<OpCase> cases = [] {
    Catalogue cat;
    MatmulCases(&cat);
    ElementwiseCases(&cat);
    NormRopeSoftmaxCases(&cat);
    AttentionCases(&cat);
    DataMovementCases(&cat);
    ConvReduceCases(&cat);
    ArgmaxCases(&cat);
    return std::move(cat.cases);
  }();
  return cases;
}

}  // namespace tessera::conformance
