#include "graph.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace tessera::embedding::internal {
namespace {

// Shared node helpers; weights are declared once by name.
class Ops {
 public:
  Ops(const DTypeOf& dtype, Graph* g) : dt_(dtype), g_(*g) {}

  TensorId Weight(const std::string& name, Shape shape) {
    auto it = weights_.find(name);
    if (it != weights_.end()) return it->second;
    TensorId t = g_.AddWeight(name, dt_(name), std::move(shape));
    weights_[name] = t;
    return t;
  }
  // x [N, in] -> [N, out] (+ bias).
  TensorId Linear(TensorId x, const std::string& base, int64_t in, int64_t out, bool bias) {
    std::vector<TensorId> ins = {x, Weight(base + ".weight", {out, in})};
    if (bias) ins.push_back(Weight(base + ".bias", {out}));
    Shape shape = g_.tensor(x).shape;
    shape.back() = out;
    return g_.AddNode(TSR_OP_MATMUL, std::move(ins), DType::kF32, shape);
  }
  TensorId LayerNorm(TensorId x, const std::string& base, int64_t dim, float eps) {
    OpParams p;
    p.f[0] = eps;
    return g_.AddNode(TSR_OP_LAYER_NORM,
                      {x, Weight(base + ".weight", {dim}), Weight(base + ".bias", {dim})},
                      DType::kF32, g_.tensor(x).shape, p);
  }
  TensorId RmsNorm(TensorId x, const std::string& w, int64_t dim, float eps, float offset) {
    OpParams p;
    p.f[0] = eps;
    p.f[1] = offset;
    return g_.AddNode(TSR_OP_RMS_NORM, {x, Weight(w, {dim})}, DType::kF32, g_.tensor(x).shape, p);
  }
  TensorId Unary(tsr_op op, TensorId x) {
    return g_.AddNode(op, {x}, DType::kF32, g_.tensor(x).shape);
  }
  TensorId Add(TensorId a, TensorId b) {
    return g_.AddNode(TSR_OP_ADD, {a, b}, DType::kF32, g_.tensor(a).shape);
  }
  // Dense attention of packed sequences: q [T, H, D], k/v [T, KV, D] -> [T, H * D].
  TensorId Attention(TensorId q, TensorId k, TensorId v, TensorId cu, bool causal, int32_t window,
                     float scale, float softcap) {
    const Shape& qs = g_.tensor(q).shape;
    OpParams p;
    p.i[0] = causal ? 1 : 0;
    p.i[1] = window;
    p.f[0] = scale;
    p.f[1] = softcap;
    TensorId o = g_.AddNode(TSR_OP_ATTENTION, {q, k, v, cu, cu}, DType::kF32, qs, p);
    return g_.Reshape(o, {qs[0], qs[1] * qs[2]});
  }

  Graph& g() { return g_; }

 private:
  const DTypeOf& dt_;
  Graph& g_;
  std::map<std::string, TensorId> weights_;
};

std::string Layer(int64_t l, const std::string& rest) {
  return "encoder.layer." + std::to_string(l) + "." + rest;
}

TensorId EncoderLayer(Ops& o, const EncoderSpec& s, int64_t l, TensorId x, TensorId cu, int32_t T) {
  const int64_t H = s.n_heads, D = s.hidden / s.n_heads;
  TensorId q = o.Linear(x, Layer(l, "attention.self.query"), s.hidden, s.hidden, true);
  TensorId k = o.Linear(x, Layer(l, "attention.self.key"), s.hidden, s.hidden, true);
  TensorId v = o.Linear(x, Layer(l, "attention.self.value"), s.hidden, s.hidden, true);
  q = o.g().Reshape(q, {T, H, D});
  k = o.g().Reshape(k, {T, H, D});
  v = o.g().Reshape(v, {T, H, D});
  TensorId a =
      o.Attention(q, k, v, cu, /*causal=*/false, 0, 1.f / std::sqrt(static_cast<float>(D)), 0.f);
  a = o.Linear(a, Layer(l, "attention.output.dense"), s.hidden, s.hidden, true);
  x = o.LayerNorm(o.Add(x, a), Layer(l, "attention.output.LayerNorm"), s.hidden, s.ln_eps);
  TensorId h = o.Linear(x, Layer(l, "intermediate.dense"), s.hidden, s.intermediate, true);
  h = o.Unary(s.act, h);
  h = o.Linear(h, Layer(l, "output.dense"), s.intermediate, s.hidden, true);
  return o.LayerNorm(o.Add(x, h), Layer(l, "output.LayerNorm"), s.hidden, s.ln_eps);
}

// BertForSequenceClassification: tanh(pooler.dense(x)) -> classifier.
// RobertaForSequenceClassification: classifier.dense -> tanh -> classifier.out_proj.
TensorId ClassifierHead(Ops& o, const EncoderSpec& s, const ModelInfo& info, TensorId cls) {
  if (info.backbone == Backbone::kBert) {
    TensorId p = o.Unary(TSR_OP_TANH, o.Linear(cls, "pooler.dense", s.hidden, s.hidden, true));
    return o.Linear(p, "classifier", s.hidden, info.num_labels, true);
  }
  TensorId h = o.Unary(TSR_OP_TANH, o.Linear(cls, "classifier.dense", s.hidden, s.hidden, true));
  return o.Linear(h, "classifier.out_proj", s.hidden, info.num_labels, true);
}

}  // namespace

StatusOr<PackInputs> BuildEncoderGraph(const EncoderSpec& s, const ModelInfo& info,
                                       const PackShape& sh, const DTypeOf& dtype, Graph* g) {
  Ops o(dtype, g);
  const int32_t T = sh.tokens;
  PackInputs in;
  in.tokens = g->AddInput("tokens", DType::kI32, {T});
  in.positions = g->AddInput("positions", DType::kI32, {T});
  in.cu = g->AddInput("cu", DType::kI32, {sh.seqs + 1});
  TensorId x =
      g->AddNode(TSR_OP_GET_ROWS,
                 {o.Weight("embeddings.word_embeddings.weight", {s.vocab, s.hidden}), in.tokens},
                 DType::kF32, {T, s.hidden});
  TensorId pos =
      g->AddNode(TSR_OP_GET_ROWS,
                 {o.Weight("embeddings.position_embeddings.weight", {s.max_positions, s.hidden}),
                  in.positions},
                 DType::kF32, {T, s.hidden});
  x = o.Add(x, pos);
  if (s.type_vocab > 0) {
    in.type_ids = g->AddInput("type_ids", DType::kI32, {T});
    TensorId ty =
        g->AddNode(TSR_OP_GET_ROWS,
                   {o.Weight("embeddings.token_type_embeddings.weight", {s.type_vocab, s.hidden}),
                    in.type_ids},
                   DType::kF32, {T, s.hidden});
    x = o.Add(x, ty);
  }
  x = o.LayerNorm(x, "embeddings.LayerNorm", s.hidden, s.ln_eps);
  for (int64_t l = 0; l < s.n_layers; ++l) x = EncoderLayer(o, s, l, x, in.cu, T);
  if (info.kind == ModelKind::kCrossEncoder) {
    in.head_rows = g->AddInput("head_rows", DType::kI32, {sh.head_rows});
    TensorId cls =
        g->AddNode(TSR_OP_GET_ROWS, {x, in.head_rows}, DType::kF32, {sh.head_rows, s.hidden});
    x = ClassifierHead(o, s, info, cls);
  }
  g->MarkOutput(x);
  in.output = x;
  TSR_RETURN_IF_ERROR(g->Validate());
  return in;
}

StatusOr<PackInputs> BuildDecoderPackGraph(const text::DecoderSpec& s, const ModelInfo& info,
                                           const PackShape& sh, const DTypeOf& dtype, Graph* g) {
  if (s.fused_qkv || s.fused_gate_up)
    return Unimplemented(s.architecture + ": fused projections are not supported for embeddings");
  Ops o(dtype, g);
  const int64_t T = sh.tokens, H = s.n_heads, KV = s.n_kv_heads, D = s.head_dim;
  PackInputs in;
  in.tokens = g->AddInput("tokens", DType::kI32, {T});
  in.positions = g->AddInput("positions", DType::kI32, {T});
  in.cu = g->AddInput("cu", DType::kI32, {sh.seqs + 1});
  TensorId x = g->AddNode(TSR_OP_GET_ROWS, {o.Weight(s.w_embed, {s.vocab, s.hidden}), in.tokens},
                          DType::kF32, {T, s.hidden});
  if (s.embed_scale != 1.f) {
    OpParams p;
    p.f[0] = s.embed_scale;
    x = g->AddNode(TSR_OP_SCALE, {x}, DType::kF32, {T, s.hidden}, p);
  }
  auto norm = [&](TensorId t, const std::string& w, int64_t dim) {
    return o.RmsNorm(t, w, dim, s.norm_eps, s.norm_weight_offset);
  };
  for (int64_t l = 0; l < s.n_layers; ++l) {
    auto lw = [&](const std::string& n) { return s.LayerWeight(l, n); };
    TensorId h = norm(x, lw(s.w_pre_attn_norm), s.hidden);
    TensorId q = g->Reshape(o.Linear(h, lw(s.w_q), s.hidden, H * D, s.qkv_bias), {T, H, D});
    TensorId k = g->Reshape(o.Linear(h, lw(s.w_k), s.hidden, KV * D, s.qkv_bias), {T, KV, D});
    TensorId v = g->Reshape(o.Linear(h, lw(s.w_v), s.hidden, KV * D, s.qkv_bias), {T, KV, D});
    if (s.qk_norm) {
      q = norm(q, lw(s.w_q_norm), D);
      k = norm(k, lw(s.w_k_norm), D);
    }
    const text::LayerAttention& la = s.layers[l];
    const RopeInvFreq& rope = s.ropes.at(la.rope);
    OpParams rp;
    rp.i[0] = 0;  // rotate_half pairs, as HF Llama/Qwen
    rp.i[1] = static_cast<int64_t>(rope.inv_freq.size() * 2);
    rp.f[0] = rope.attention_scaling;
    TensorId inv = o.Weight("rope." + la.rope, {static_cast<int64_t>(rope.inv_freq.size())});
    q = g->AddNode(TSR_OP_ROPE, {q, in.positions, inv}, DType::kF32, {T, H, D}, rp);
    k = g->AddNode(TSR_OP_ROPE, {k, in.positions, inv}, DType::kF32, {T, KV, D}, rp);
    const float scale = s.attn_scale > 0 ? s.attn_scale : 1.f / std::sqrt(static_cast<float>(D));
    TensorId a =
        o.Attention(q, k, v, in.cu, /*causal=*/true, la.sliding_window, scale, s.attn_softcap);
    a = o.Linear(a, lw(s.w_o), H * D, s.hidden, s.o_bias);
    if (!s.w_post_attn_norm.empty()) a = norm(a, lw(s.w_post_attn_norm), s.hidden);
    x = o.Add(x, a);
    h = norm(x, lw(s.w_pre_mlp_norm), s.hidden);
    TensorId gate = o.Linear(h, lw(s.w_gate), s.hidden, s.intermediate, s.mlp_bias);
    TensorId up = o.Linear(h, lw(s.w_up), s.hidden, s.intermediate, s.mlp_bias);
    tsr_op act = s.act == text::Activation::kSilu ? TSR_OP_SWIGLU : TSR_OP_GEGLU;
    h = g->AddNode(act, {gate, up}, DType::kF32, {T, s.intermediate});
    h = o.Linear(h, lw(s.w_down), s.intermediate, s.hidden, s.mlp_bias);
    if (!s.w_post_mlp_norm.empty()) h = norm(h, lw(s.w_post_mlp_norm), s.hidden);
    x = o.Add(x, h);
  }
  if (info.kind == ModelKind::kYesNoReranker) {
    in.head_rows = g->AddInput("head_rows", DType::kI32, {sh.head_rows});
    x = g->AddNode(TSR_OP_GET_ROWS, {x, in.head_rows}, DType::kF32, {sh.head_rows, s.hidden});
    x = norm(x, s.w_final_norm, s.hidden);
    const std::string& head = s.tie_embeddings ? s.w_embed : s.w_lm_head;
    x = g->AddNode(TSR_OP_MATMUL, {x, o.Weight(head, {s.vocab, s.hidden})}, DType::kF32,
                   {sh.head_rows, s.vocab});
    if (s.final_softcap > 0) {
      OpParams p;
      p.f[0] = s.final_softcap;
      x = g->AddNode(TSR_OP_SOFTCAP, {x}, DType::kF32, {sh.head_rows, s.vocab}, p);
    }
  } else {
    x = norm(x, s.w_final_norm, s.hidden);
  }
  g->MarkOutput(x);
  in.output = x;
  TSR_RETURN_IF_ERROR(g->Validate());
  return in;
}

std::vector<float> PoolRows(const float* hidden, int64_t width, int32_t begin, int32_t end,
                            Pooling pooling) {
  auto row = [&](int32_t r) { return hidden + static_cast<int64_t>(r) * width; };
  switch (pooling) {
    case Pooling::kCls: return std::vector<float>(row(begin), row(begin) + width);
    case Pooling::kLastToken: return std::vector<float>(row(end - 1), row(end - 1) + width);
    case Pooling::kMax: {
      std::vector<float> out(row(begin), row(begin) + width);
      for (int32_t r = begin + 1; r < end; ++r)
        for (int64_t i = 0; i < width; ++i) out[i] = std::max(out[i], row(r)[i]);
      return out;
    }
    case Pooling::kMean: break;
  }
  // A fixed summation order per sequence: the result does not depend on the packing.
  std::vector<double> sum(static_cast<size_t>(width), 0.0);
  for (int32_t r = begin; r < end; ++r)
    for (int64_t i = 0; i < width; ++i) sum[i] += row(r)[i];
  std::vector<float> out(static_cast<size_t>(width));
  for (int64_t i = 0; i < width; ++i) out[i] = static_cast<float>(sum[i] / (end - begin));
  return out;
}

}  // namespace tessera::embedding::internal
