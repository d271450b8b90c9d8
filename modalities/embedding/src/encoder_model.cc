#include "tessera/embedding/encoder_model.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "graph.h"
#include "tessera/core/executor.h"

namespace tessera::embedding {

using internal::PackInputs;
using internal::PackShape;

struct EncoderModel::Impl {
  struct Cached {
    std::unique_ptr<Graph> graph;
    PackInputs inputs;
    std::unique_ptr<Executable> exe;
    uint64_t last_used = 0;
  };
  LoadOptions options;
  internal::EncoderSpec encoder;
  text::DecoderSpec decoder;
  int64_t vocab = 0;
  int32_t position_offset = 0;  // RoBERTa: padding_idx + 1
  int32_t pad_id = -1;          // RoBERTa: tokens equal to it take position padding_idx
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<ExecutionContext> ctx;
  std::map<std::string, std::vector<float>> f32_weights;  // vectors, RoPE tables
  std::map<std::string, DType> dtypes;
  std::map<PackShape, std::unique_ptr<Cached>> graphs;
  uint64_t clock = 0;

  ~Impl() { graphs.clear(); }  // executables reference the context
  StatusOr<Cached*> GraphFor(const PackShape& shape, const ModelInfo& info);
};

namespace {

std::optional<DType> IrDType(StDType t) {
  switch (t) {
    case StDType::kF32: return DType::kF32;
    case StDType::kF16: return DType::kF16;
    case StDType::kBF16: return DType::kBF16;
    default: return std::nullopt;
  }
}

// Names a checkpoint tensor is bound under: as stored, without the wrapper prefix of
// *ForSequenceClassification / causal-LM checkpoints, with "model." added (Qwen3-Embedding
// stores the bare decoder), and old BERT LayerNorm gamma/beta spelled weight/bias.
std::vector<std::string> Aliases(const std::string& name) {
  std::vector<std::string> out = {name};
  for (const char* prefix : {"bert.", "roberta.", "model."}) {
    const size_t n = std::strlen(prefix);
    if (name.compare(0, n, prefix) == 0) out.push_back(name.substr(n));
  }
  if (name.compare(0, 6, "model.") != 0) out.push_back("model." + name);
  const size_t count = out.size();
  for (size_t i = 0; i < count; ++i) {
    const std::string& a = out[i];
    if (a.find("LayerNorm.gamma") != std::string::npos)
      out.push_back(a.substr(0, a.size() - 5) + "weight");
    if (a.find("LayerNorm.beta") != std::string::npos)
      out.push_back(a.substr(0, a.size() - 4) + "bias");
  }
  return out;
}

StatusOr<internal::EncoderSpec> EncoderSpecFrom(const ModelConfig& c, const Checkpoint& ckpt) {
  internal::EncoderSpec s;
  s.hidden = c.hidden_size;
  s.intermediate = c.intermediate_size;
  s.n_layers = c.num_hidden_layers;
  s.n_heads = c.num_attention_heads;
  s.vocab = c.vocab_size;
  s.max_positions = c.max_position_embeddings;
  s.ln_eps = static_cast<float>(c.layer_norm_eps.value_or(1e-12));
  if (s.n_heads <= 0 || s.hidden % s.n_heads != 0)
    return InvalidArgument("config: hidden_size must be a multiple of num_attention_heads");
  const std::string act = c.hidden_act.empty() ? "gelu" : c.hidden_act;
  if (act == "gelu")
    s.act = TSR_OP_GELU;
  else if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast")
    s.act = TSR_OP_GELU_TANH;
  else if (act == "relu")
    s.act = TSR_OP_RELU;
  else
    return Unimplemented("config: hidden_act '" + act + "' is not supported for encoders");
  // The table's own shape decides the type vocabulary (absent in some exports).
  for (const char* n :
       {"embeddings.token_type_embeddings.weight", "bert.embeddings.token_type_embeddings.weight",
        "roberta.embeddings.token_type_embeddings.weight"}) {
    if (const TensorInfo* t = ckpt.Find(n); t && t->shape.size() == 2) s.type_vocab = t->shape[0];
  }
  return s;
}

StatusOr<text::DecoderSpec> DecoderSpecFrom(ModelConfig c) {
  auto spec = text::ArchitectureRegistry::Get().MakeSpec(c);
  if (spec.ok() || c.architectures.empty()) return spec;
  // A bare-decoder config ("Qwen3Model"): use its causal-LM spelling.
  std::string a = c.architectures[0];
  if (a.size() > 5 && a.compare(a.size() - 5, 5, "Model") == 0) {
    c.architectures = {a.substr(0, a.size() - 5) + "ForCausalLM"};
    return text::ArchitectureRegistry::Get().MakeSpec(c);
  }
  return spec;
}

}  // namespace

EncoderModel::~EncoderModel() = default;

StatusOr<std::unique_ptr<EncoderModel>> EncoderModel::Load(const std::string& dir,
                                                           std::vector<Device*> devices,
                                                           const LoadOptions& options) {
  if (devices.empty()) return FailedPrecondition("no device to load the model on");
  if (!std::filesystem::is_directory(dir))
    return NotFound("model folder '" + dir + "' does not exist");
  auto m = std::unique_ptr<EncoderModel>(new EncoderModel());
  m->dir_ = dir;
  m->impl_ = std::make_unique<Impl>();
  Impl& im = *m->impl_;
  im.options = options;
  TSR_ASSIGN_OR_RETURN(m->info_, DetectModel(dir));
  TSR_ASSIGN_OR_RETURN(m->config_, LoadModelConfig(dir));
  TSR_ASSIGN_OR_RETURN(im.checkpoint, Checkpoint::Open(dir));
  TSR_ASSIGN_OR_RETURN(m->tokenizer_, text::Tokenizer::FromFile(dir + "/tokenizer.json"));
  const ModelConfig& c = m->config_;
  if (m->info_.backbone == Backbone::kDecoder) {
    TSR_ASSIGN_OR_RETURN(im.decoder, DecoderSpecFrom(c));
    im.vocab = im.decoder.vocab;
  } else {
    TSR_ASSIGN_OR_RETURN(im.encoder, EncoderSpecFrom(c, *im.checkpoint));
    im.vocab = im.encoder.vocab;
    if (m->info_.backbone == Backbone::kRoberta) {
      im.pad_id = c.pad_token_ids.empty() ? 1 : static_cast<int32_t>(c.pad_token_ids[0]);
      im.position_offset = im.pad_id + 1;
    }
  }
  if (m->info_.kind == ModelKind::kYesNoReranker) {
    auto yes = m->tokenizer_->TokenToId("yes"), no = m->tokenizer_->TokenToId("no");
    if (!yes || !no) return FailedPrecondition("yes/no reranker: the vocabulary lacks yes/no");
    m->yes_id_ = *yes;
    m->no_id_ = *no;
  }
  im.ctx = std::make_unique<ExecutionContext>(std::move(devices));
  // Matrices are used in place from the mmap; vectors (norms, biases) become f32 copies.
  for (const std::string& name : im.checkpoint->TensorNames()) {
    const TensorInfo* t = im.checkpoint->Find(name);
    if (t->shape.size() <= 1) {
      TSR_ASSIGN_OR_RETURN(auto v, TensorToF32(*t));
      auto& stored = im.f32_weights[name] = std::move(v);
      for (const auto& a : Aliases(name)) {
        im.ctx->BindWeight(a, stored.data(), stored.size() * sizeof(float));
        im.dtypes[a] = DType::kF32;
      }
    } else if (auto dt = IrDType(t->dtype)) {
      for (const auto& a : Aliases(name)) {
        im.ctx->BindWeight(a, t->data, t->nbytes);
        im.dtypes[a] = *dt;
      }
    }
  }
  for (const auto& [key, rope] : im.decoder.ropes) {
    auto& v = im.f32_weights["rope." + key] = rope.inv_freq;
    im.ctx->BindWeight("rope." + key, v.data(), v.size() * sizeof(float));
    im.dtypes["rope." + key] = DType::kF32;
  }
  spdlog::info("loaded {} {} ({}, pooling {}, normalize {}, max {} tokens) from {}",
               ModelKindName(m->info_.kind), m->info_.architecture,
               m->info_.sentence_transformers ? "sentence-transformers" : "defaults",
               PoolingName(m->info_.pooling), m->info_.normalize, m->info_.max_seq_length, dir);
  return m;
}

StatusOr<EncoderModel::Impl::Cached*> EncoderModel::Impl::GraphFor(const PackShape& shape,
                                                                   const ModelInfo& info) {
  auto it = graphs.find(shape);
  if (it == graphs.end()) {
    if (graphs.size() >= std::max<size_t>(options.max_cached_graphs, 1)) {
      auto oldest = std::min_element(
          graphs.begin(), graphs.end(),
          [](const auto& a, const auto& b) { return a.second->last_used < b.second->last_used; });
      graphs.erase(oldest);
    }
    auto c = std::make_unique<Cached>();
    c->graph = std::make_unique<Graph>();
    internal::DTypeOf dtype = [this](const std::string& n) {
      auto d = dtypes.find(n);
      return d == dtypes.end() ? DType::kF32 : d->second;
    };
    if (info.backbone == Backbone::kDecoder) {
      TSR_ASSIGN_OR_RETURN(
          c->inputs, internal::BuildDecoderPackGraph(decoder, info, shape, dtype, c->graph.get()));
    } else {
      TSR_ASSIGN_OR_RETURN(
          c->inputs, internal::BuildEncoderGraph(encoder, info, shape, dtype, c->graph.get()));
    }
    for (const TensorDesc& t : c->graph->tensors())
      if (t.kind == TensorKind::kWeight && !dtypes.count(t.name))
        return NotFound("the checkpoint has no tensor '" + t.name + "' (needed by " +
                        info.architecture + ")");
    TSR_ASSIGN_OR_RETURN(c->exe, Executable::Prepare(*ctx, *c->graph));
    it = graphs.emplace(shape, std::move(c)).first;
  }
  it->second->last_used = ++clock;
  return it->second.get();
}

StatusOr<std::vector<std::vector<float>>> EncoderModel::Forward(std::span<const TokenSequence> seqs,
                                                                int64_t max_batch_tokens) {
  for (size_t i = 0; i < seqs.size(); ++i) {
    const TokenSequence& s = seqs[i];
    const std::string which = "input " + std::to_string(i);
    if (s.ids.empty()) return InvalidArgument(which + " has no tokens");
    if (static_cast<int64_t>(s.ids.size()) > max_tokens())
      return OutOfRange(which + " has " + std::to_string(s.ids.size()) +
                        " tokens, more than the model's limit of " + std::to_string(max_tokens()));
    if (!s.type_ids.empty() && s.type_ids.size() != s.ids.size())
      return InvalidArgument(which + ": type ids do not match the ids");
    for (int32_t id : s.ids)
      if (id < 0 || id >= impl_->vocab)
        return OutOfRange(which + ": token id " + std::to_string(id) +
                          " is outside the vocabulary");
    // Decoders have no token types; encoders without a type table accept only type 0.
    if (info_.backbone == Backbone::kDecoder) continue;
    for (int32_t t : s.type_ids)
      if (t < 0 || t >= std::max<int64_t>(impl_->encoder.type_vocab, 1))
        return OutOfRange(which + ": token type " + std::to_string(t) + " is out of range");
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::vector<float>> out;
  out.reserve(seqs.size());
  // Greedy packing in input order: a pass takes sequences until the next would pass the budget.
  size_t begin = 0;
  while (begin < seqs.size()) {
    size_t end = begin;
    int64_t tokens = 0;
    while (
        end < seqs.size() &&
        (end == begin || tokens + static_cast<int64_t>(seqs[end].ids.size()) <= max_batch_tokens)) {
      tokens += static_cast<int64_t>(seqs[end].ids.size());
      ++end;
    }
    TSR_ASSIGN_OR_RETURN(auto rows, RunPacked(seqs.subspan(begin, end - begin)));
    for (auto& r : rows) out.push_back(std::move(r));
    begin = end;
  }
  return out;
}

StatusOr<std::vector<std::vector<float>>> EncoderModel::RunPacked(
    std::span<const TokenSequence> seqs) {
  Impl& im = *impl_;
  std::vector<int32_t> tokens, positions, types, cu = {0}, head_rows;
  for (const TokenSequence& s : seqs) {
    int32_t non_pad = 0;
    for (size_t i = 0; i < s.ids.size(); ++i) {
      tokens.push_back(s.ids[i]);
      types.push_back(s.type_ids.empty() ? 0 : s.type_ids[i]);
      if (info_.backbone == Backbone::kRoberta) {
        // HF create_position_ids_from_input_ids: padding_idx + running count of non-pad tokens.
        const bool pad = s.ids[i] == im.pad_id;
        if (!pad) ++non_pad;
        positions.push_back(pad ? im.pad_id : im.pad_id + non_pad);
      } else {
        positions.push_back(static_cast<int32_t>(i));
      }
    }
    head_rows.push_back(info_.kind == ModelKind::kYesNoReranker
                            ? static_cast<int32_t>(tokens.size()) - 1
                            : cu.back());
    cu.push_back(static_cast<int32_t>(tokens.size()));
  }
  const bool head = info_.kind != ModelKind::kEmbedding;
  PackShape shape{static_cast<int32_t>(tokens.size()), static_cast<int32_t>(seqs.size()),
                  head ? static_cast<int32_t>(seqs.size()) : 0};
  TSR_ASSIGN_OR_RETURN(Impl::Cached * c, im.GraphFor(shape, info_));
  const PackInputs& in = c->inputs;
  auto host = [](TensorId id, const std::vector<int32_t>& v) {
    return HostTensor{id, const_cast<int32_t*>(v.data()), v.size() * sizeof(int32_t)};
  };
  std::vector<HostTensor> inputs = {host(in.tokens, tokens), host(in.positions, positions),
                                    host(in.cu, cu)};
  if (in.type_ids != kNoTensor) inputs.push_back(host(in.type_ids, types));
  if (in.head_rows != kNoTensor) inputs.push_back(host(in.head_rows, head_rows));
  const Shape& out_shape = c->graph->tensor(in.output).shape;
  const int64_t width = out_shape[1];
  std::vector<float> result(static_cast<size_t>(out_shape[0] * width));
  HostTensor outputs[] = {{in.output, result.data(), result.size() * sizeof(float)}};
  TSR_RETURN_IF_ERROR(c->exe->Run(inputs, outputs));

  std::vector<std::vector<float>> rows(seqs.size());
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (info_.kind == ModelKind::kCrossEncoder) {
      rows[s].assign(result.begin() + s * width, result.begin() + (s + 1) * width);
    } else if (info_.kind == ModelKind::kYesNoReranker) {
      rows[s] = {result[s * width + no_id_], result[s * width + yes_id_]};
    } else {
      rows[s] = internal::PoolRows(result.data(), width, cu[s], cu[s + 1], info_.pooling);
    }
  }
  return rows;
}

}  // namespace tessera::embedding
