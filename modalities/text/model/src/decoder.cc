#include "tessera/text/decoder.h"

#include <cmath>
#include <tuple>

namespace tessera::text {

std::string DecoderSpec::LayerWeight(int64_t layer, const std::string& name) const {
  std::string p = layer_prefix;
  auto at = p.find("{L}");
  if (at != std::string::npos) p.replace(at, 3, std::to_string(layer));
  return p + name;
}

ArchitectureRegistry& ArchitectureRegistry::Get() {
  static ArchitectureRegistry registry;
  return registry;
}

void ArchitectureRegistry::Register(const std::string& name, SpecFactory factory) {
  factories_[name] = std::move(factory);
}

std::vector<std::string> ArchitectureRegistry::Names() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : factories_) out.push_back(name);
  return out;
}

StatusOr<DecoderSpec> ArchitectureRegistry::MakeSpec(const ModelConfig& config) const {
  for (const auto& arch : config.architectures) {
    auto it = factories_.find(arch);
    if (it == factories_.end()) continue;
    TSR_ASSIGN_OR_RETURN(DecoderSpec spec, it->second(config));
    spec.architecture = arch;
    if (spec.layers.size() != static_cast<size_t>(spec.n_layers))
      return Internal(arch + ": spec has " + std::to_string(spec.layers.size()) + " layer entries");
    return spec;
  }
  std::string given, known;
  for (const auto& a : config.architectures) given += (given.empty() ? "" : ", ") + a;
  for (const auto& n : Names()) known += (known.empty() ? "" : ", ") + n;
  return Unimplemented("unsupported architecture [" +
                       (given.empty() ? std::string("none given") : given) +
                       "]; supported: " + known);
}

StatusOr<RopeInvFreq> RopeFor(const ModelConfig& config, const std::string& layer_type,
                              int64_t head_dim) {
  return ComputeRopeInvFreq(config.RopeFor(layer_type), static_cast<int>(head_dim));
}

StatusOr<DecoderSpec> LlamaLikeSpec(const ModelConfig& c) {
  DecoderSpec s;
  s.hidden = c.hidden_size;
  s.intermediate = c.intermediate_size;
  s.n_layers = c.num_hidden_layers;
  s.n_heads = c.num_attention_heads;
  s.n_kv_heads = c.num_key_value_heads;
  s.head_dim = c.head_dim;
  s.vocab = c.vocab_size;
  s.max_context = c.max_position_embeddings;
  s.norm_eps = static_cast<float>(c.rms_norm_eps.value_or(1e-6));
  s.tie_embeddings = c.tie_word_embeddings;
  s.qkv_bias = c.attention_bias;
  s.o_bias = c.attention_bias;
  s.mlp_bias = c.raw.value("mlp_bias", false);
  if (s.n_heads <= 0 || s.n_kv_heads <= 0 || s.n_heads % s.n_kv_heads != 0)
    return InvalidArgument(
        "config: num_attention_heads must be a positive multiple of num_key_value_heads");
  TSR_ASSIGN_OR_RETURN(RopeInvFreq rope, RopeFor(c, "full_attention", s.head_dim));
  s.rotary_dim = static_cast<int32_t>(rope.inv_freq.size() * 2);
  s.ropes["global"] = std::move(rope);
  int32_t window = c.sliding_window ? static_cast<int32_t>(*c.sliding_window) : 0;
  s.layers.assign(s.n_layers, LayerAttention{window, "global"});
  return s;
}

Status RequireActivation(const ModelConfig& c, std::initializer_list<const char*> allowed) {
  if (c.hidden_act.empty()) return OkStatus();
  for (const char* a : allowed)
    if (c.hidden_act == a) return OkStatus();
  return Unimplemented("config: hidden_act '" + c.hidden_act + "' is not supported for " +
                       (c.architectures.empty() ? std::string("this model") : c.architectures[0]));
}

Status ApplyLayerTypes(const ModelConfig& c, const std::function<bool(int64_t)>& default_is_sliding,
                       DecoderSpec* s) {
  int32_t window = c.sliding_window ? static_cast<int32_t>(*c.sliding_window) : 0;
  for (int64_t l = 0; l < s->n_layers; ++l) {
    bool sliding = default_is_sliding(l);
    if (!c.layer_types.empty()) {
      if (c.layer_types.size() != static_cast<size_t>(s->n_layers))
        return InvalidArgument("config: layer_types has " + std::to_string(c.layer_types.size()) +
                               " entries for " + std::to_string(s->n_layers) + " layers");
      sliding = c.layer_types[l] == "sliding_attention";
    }
    std::string type = sliding ? "sliding_attention" : "full_attention";
    if (!s->ropes.count(type)) {
      TSR_ASSIGN_OR_RETURN(RopeInvFreq r, RopeFor(c, type, s->head_dim));
      s->ropes[type] = std::move(r);
    }
    s->layers[l] = LayerAttention{sliding ? window : 0, type};
  }
  return OkStatus();
}

bool StepShape::operator<(const StepShape& o) const {
  return std::tie(tokens, seqs, max_blocks, logit_rows, kv_blocks, block_size, argmax) <
         std::tie(o.tokens, o.seqs, o.max_blocks, o.logit_rows, o.kv_blocks, o.block_size,
                  o.argmax);
}

namespace {

class Builder {
 public:
  Builder(const DecoderSpec& spec, const StepShape& shape,
          const std::function<DType(const std::string&)>& dt, Graph* g)
      : s_(spec), sh_(shape), dt_(dt), g_(*g) {}

  TensorId Weight(const std::string& name, Shape shape) {
    auto it = weights_.find(name);
    if (it != weights_.end()) return it->second;
    TensorId t = g_.AddWeight(name, dt_(name), std::move(shape));
    weights_[name] = t;
    return t;
  }

  TensorId Norm(TensorId x, const std::string& w, int64_t dim) {
    OpParams p;
    p.f[0] = s_.norm_eps;
    p.f[1] = s_.norm_weight_offset;
    return g_.AddNode(TSR_OP_RMS_NORM, {x, Weight(w, {dim})}, DType::kF32, g_.tensor(x).shape, p);
  }

  // x [T, in] -> [T, out] (+ bias).
  TensorId Linear(TensorId x, const std::string& base, int64_t in, int64_t out, bool bias) {
    std::vector<TensorId> ins = {x, Weight(base + ".weight", {out, in})};
    if (bias) ins.push_back(Weight(base + ".bias", {out}));
    Shape shape = g_.tensor(x).shape;
    shape.back() = out;
    return g_.AddNode(TSR_OP_MATMUL, std::move(ins), DType::kF32, shape);
  }

  TensorId Attention(int64_t l, TensorId x, const StepInputs& in) {
    const int64_t T = sh_.tokens, H = s_.n_heads, KV = s_.n_kv_heads, D = s_.head_dim;
    auto lw = [&](const std::string& n) { return s_.LayerWeight(l, n); };
    TensorId q, k, v;
    if (s_.fused_qkv) {
      TensorId qkv = Linear(x, lw(s_.w_qkv), s_.hidden, (H + 2 * KV) * D, s_.qkv_bias);
      q = g_.Slice(qkv, 1, 0, H * D);
      k = g_.Slice(qkv, 1, H * D, KV * D);
      v = g_.Slice(qkv, 1, (H + KV) * D, KV * D);
      // Slices of a row are strided: make them contiguous before reshaping into heads.
      q = g_.AddNode(TSR_OP_COPY, {q}, DType::kF32, {T, H * D});
      k = g_.AddNode(TSR_OP_COPY, {k}, DType::kF32, {T, KV * D});
      v = g_.AddNode(TSR_OP_COPY, {v}, DType::kF32, {T, KV * D});
    } else {
      q = Linear(x, lw(s_.w_q), s_.hidden, H * D, s_.qkv_bias);
      k = Linear(x, lw(s_.w_k), s_.hidden, KV * D, s_.qkv_bias);
      v = Linear(x, lw(s_.w_v), s_.hidden, KV * D, s_.qkv_bias);
    }
    q = g_.Reshape(q, {T, H, D});
    k = g_.Reshape(k, {T, KV, D});
    v = g_.Reshape(v, {T, KV, D});
    if (s_.qk_norm) {
      q = Norm(q, lw(s_.w_q_norm), D);
      k = Norm(k, lw(s_.w_k_norm), D);
    }
    const LayerAttention& la = s_.layers[l];
    const RopeInvFreq& rope = s_.ropes.at(la.rope);
    OpParams rp;
    rp.i[0] = 0;  // rotate_half pairs, as HF Llama
    rp.i[1] = static_cast<int64_t>(rope.inv_freq.size() * 2);
    rp.f[0] = rope.attention_scaling;
    TensorId inv = Weight("rope." + la.rope, {static_cast<int64_t>(rope.inv_freq.size())});
    q = g_.AddNode(TSR_OP_ROPE, {q, in.positions, inv}, DType::kF32, {T, H, D}, rp);
    k = g_.AddNode(TSR_OP_ROPE, {k, in.positions, inv}, DType::kF32, {T, KV, D}, rp);
    TensorId kc = KvState("kv." + std::to_string(l) + ".k");
    TensorId vc = KvState("kv." + std::to_string(l) + ".v");
    TensorId kw = g_.AddInPlaceNode(TSR_OP_KV_WRITE, {kc, k, in.slots}, kc);
    TensorId vw = g_.AddInPlaceNode(TSR_OP_KV_WRITE, {vc, v, in.slots}, vc);
    OpParams ap;
    ap.i[0] = 1;
    ap.i[1] = la.sliding_window;
    ap.f[0] = s_.attn_scale > 0 ? s_.attn_scale : 1.f / std::sqrt(static_cast<float>(D));
    ap.f[1] = s_.attn_softcap;
    TensorId o =
        g_.AddNode(TSR_OP_PAGED_ATTENTION, {q, kw, vw, in.block_table, in.kv_lens, in.cu_q},
                   DType::kF32, {T, H, D}, ap);
    o = g_.Reshape(o, {T, H * D});
    return Linear(o, lw(s_.w_o), H * D, s_.hidden, s_.o_bias);
  }

  TensorId Mlp(int64_t l, TensorId x) {
    auto lw = [&](const std::string& n) { return s_.LayerWeight(l, n); };
    const int64_t T = sh_.tokens, I = s_.intermediate;
    TensorId gate, up;
    if (s_.fused_gate_up) {
      TensorId gu = Linear(x, lw(s_.w_gate_up), s_.hidden, 2 * I, s_.mlp_bias);
      gate = g_.AddNode(TSR_OP_COPY, {g_.Slice(gu, 1, 0, I)}, DType::kF32, {T, I});
      up = g_.AddNode(TSR_OP_COPY, {g_.Slice(gu, 1, I, I)}, DType::kF32, {T, I});
    } else {
      gate = Linear(x, lw(s_.w_gate), s_.hidden, I, s_.mlp_bias);
      up = Linear(x, lw(s_.w_up), s_.hidden, I, s_.mlp_bias);
    }
    tsr_op act = s_.act == Activation::kSilu ? TSR_OP_SWIGLU : TSR_OP_GEGLU;
    TensorId h = g_.AddNode(act, {gate, up}, DType::kF32, {T, I});
    return Linear(h, lw(s_.w_down), I, s_.hidden, s_.mlp_bias);
  }

  TensorId KvState(const std::string& name) {
    return g_.AddState(name, DType::kF32,
                       {sh_.kv_blocks, sh_.block_size, s_.n_kv_heads, s_.head_dim});
  }

  StatusOr<StepInputs> Build() {
    const int64_t T = sh_.tokens, S = sh_.seqs;
    StepInputs in;
    in.tokens = g_.AddInput("tokens", DType::kI32, {T});
    in.positions = g_.AddInput("positions", DType::kI32, {T});
    in.slots = g_.AddInput("slots", DType::kI32, {T});
    in.block_table = g_.AddInput("block_table", DType::kI32, {S, sh_.max_blocks});
    in.kv_lens = g_.AddInput("kv_lens", DType::kI32, {S});
    in.cu_q = g_.AddInput("cu_q", DType::kI32, {S + 1});
    in.logit_rows = g_.AddInput("logit_rows", DType::kI32, {sh_.logit_rows});
    TensorId embed = Weight(s_.w_embed, {s_.vocab, s_.hidden});
    TensorId x = g_.AddNode(TSR_OP_GET_ROWS, {embed, in.tokens}, DType::kF32, {T, s_.hidden});
    if (s_.embed_scale != 1.f) {
      OpParams p;
      p.f[0] = s_.embed_scale;
      x = g_.AddNode(TSR_OP_SCALE, {x}, DType::kF32, {T, s_.hidden}, p);
    }
    for (int64_t l = 0; l < s_.n_layers; ++l) {
      TensorId h = Norm(x, s_.LayerWeight(l, s_.w_pre_attn_norm), s_.hidden);
      h = Attention(l, h, in);
      if (!s_.w_post_attn_norm.empty())
        h = Norm(h, s_.LayerWeight(l, s_.w_post_attn_norm), s_.hidden);
      x = g_.AddNode(TSR_OP_ADD, {x, h}, DType::kF32, {T, s_.hidden});
      h = Norm(x, s_.LayerWeight(l, s_.w_pre_mlp_norm), s_.hidden);
      h = Mlp(l, h);
      if (!s_.w_post_mlp_norm.empty())
        h = Norm(h, s_.LayerWeight(l, s_.w_post_mlp_norm), s_.hidden);
      x = g_.AddNode(TSR_OP_ADD, {x, h}, DType::kF32, {T, s_.hidden});
    }
    // Only the rows whose logits are wanted go through the final norm and the LM head.
    const int64_t R = sh_.logit_rows;
    x = g_.AddNode(TSR_OP_GET_ROWS, {x, in.logit_rows}, DType::kF32, {R, s_.hidden});
    x = Norm(x, s_.w_final_norm, s_.hidden);
    const std::string& head = s_.tie_embeddings ? s_.w_embed : s_.w_lm_head;
    TensorId logits = g_.AddNode(TSR_OP_MATMUL, {x, Weight(head, {s_.vocab, s_.hidden})},
                                 DType::kF32, {R, s_.vocab});
    if (s_.final_softcap > 0) {
      OpParams p;
      p.f[0] = s_.final_softcap;
      logits = g_.AddNode(TSR_OP_SOFTCAP, {logits}, DType::kF32, {R, s_.vocab}, p);
    }
    in.logits = logits;
    if (sh_.argmax) {
      // Only the picks leave the device: 4 bytes a row instead of a vocab of floats.
      in.ids = g_.AddNode(TSR_OP_ARGMAX, {logits}, DType::kI32, {R, 1});
      g_.MarkOutput(in.ids);
    } else {
      g_.MarkOutput(logits);
    }
    TSR_RETURN_IF_ERROR(g_.Validate());
    return in;
  }

 private:
  const DecoderSpec& s_;
  const StepShape& sh_;
  const std::function<DType(const std::string&)>& dt_;
  Graph& g_;
  std::map<std::string, TensorId> weights_;
};

}  // namespace

StatusOr<StepInputs> BuildDecoderGraph(const DecoderSpec& spec, const StepShape& shape,
                                       const std::function<DType(const std::string&)>& weight_dtype,
                                       Graph* graph) {
  Builder b(spec, shape, weight_dtype, graph);
  return b.Build();
}

}  // namespace tessera::text
