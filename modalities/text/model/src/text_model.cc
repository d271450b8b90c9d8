#include "tessera/text/text_model.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <tuple>

#include "tessera/quant_formats.h"

namespace tessera::text {

struct TextModel::CachedStep {
  std::unique_ptr<Graph> graph;
  StepInputs inputs;
  std::unique_ptr<Executable> exe;
  uint64_t last_used = 0;
};

// Prepared graphs kept per model. Continuous batching produces many distinct step shapes; the
// least recently used are dropped so a long-running server's memory stays bounded.
constexpr size_t kMaxCachedSteps = 64;

namespace {

StatusOr<DType> IrDType(const TensorInfo& t) {
  switch (t.dtype) {
    case StDType::kF32: return DType::kF32;
    case StDType::kF16: return DType::kF16;
    case StDType::kBF16: return DType::kBF16;
    default:
      return Unimplemented("weight '" + t.name + "' has dtype " + StDTypeName(t.dtype) +
                           "; f32, f16 and bf16 checkpoints are supported");
  }
}

std::vector<int32_t> ToI32(const std::vector<int64_t>& v) {
  return std::vector<int32_t>(v.begin(), v.end());
}

}  // namespace

TextModel::~TextModel() {
  steps_.clear();  // executables reference the context
  kv_.reset();
}

StatusOr<std::unique_ptr<TextModel>> TextModel::Load(const std::string& dir,
                                                     std::vector<Device*> devices,
                                                     const TextModelOptions& options) {
  if (devices.empty()) return FailedPrecondition("no device to load the model on");
  if (!std::filesystem::is_directory(dir))
    return NotFound("model folder '" + dir + "' does not exist");
  auto m = std::unique_ptr<TextModel>(new TextModel());
  m->dir_ = dir;
  TSR_ASSIGN_OR_RETURN(m->config_, LoadModelConfig(dir));
  TSR_ASSIGN_OR_RETURN(m->spec_, ArchitectureRegistry::Get().MakeSpec(m->config_));
  TSR_ASSIGN_OR_RETURN(m->checkpoint_, Checkpoint::Open(dir));
  TSR_ASSIGN_OR_RETURN(m->tokenizer_, Tokenizer::FromFile(dir + "/tokenizer.json"));
  auto tmpl = ChatTemplate::FromModelDir(dir);
  if (tmpl.ok())
    m->chat_template_ = std::move(tmpl).value();
  else
    spdlog::debug("no chat template: {}", tmpl.status().message());
  auto gen = LoadGenerationConfig(dir);
  if (gen.ok())
    m->generation_ = *gen;
  else if (gen.status().code() != StatusCode::kNotFound)
    return gen.status();
  m->eos_ids_ = ToI32(!m->generation_.eos_token_ids.empty() ? m->generation_.eos_token_ids
                                                            : m->config_.eos_token_ids);
  if (m->eos_ids_.empty())
    if (auto id = m->tokenizer_->TokenToId("</s>")) m->eos_ids_.push_back(*id);

  m->ctx_ = std::make_unique<ExecutionContext>(std::move(devices));
  // TESSERA_DEVICE_ARGMAX=0: greedy picks on the host from the downloaded logits (the A/B knob
  // of ForwardArgmax, and how tests reach the fallback).
  if (const char* v = std::getenv("TESSERA_DEVICE_ARGMAX");
      v != nullptr && std::string_view(v) == "0")
    m->argmax_unavailable_ = true;
  TSR_RETURN_IF_ERROR(m->QuantizeWeights(options));
  TSR_RETURN_IF_ERROR(m->BindWeights());

  KvCacheShape kv;
  kv.num_layers = static_cast<int32_t>(m->spec_.n_layers);
  kv.num_kv_heads = static_cast<int32_t>(m->spec_.n_kv_heads);
  kv.head_dim = static_cast<int32_t>(m->spec_.head_dim);
  kv.block_size = options.kv_block_size;
  int64_t per_token = kv.BytesPerBlockPerLayer() / kv.block_size * kv.num_layers;
  int64_t tokens = options.kv_tokens > 0
                       ? options.kv_tokens
                       : std::min<int64_t>(m->spec_.max_context > 0 ? m->spec_.max_context : 4096,
                                           options.kv_budget_bytes / per_token);
  tokens = std::max<int64_t>(tokens, kv.block_size);
  kv.num_blocks = static_cast<int32_t>((tokens + kv.block_size - 1) / kv.block_size);
  TSR_ASSIGN_OR_RETURN(m->kv_, KvCache::Create(kv, *m->ctx_, 0));
  spdlog::info(
      "loaded {} ({} layers, hidden {}, vocab {}) from {}; KV cache {} tokens ({:.1f} MiB)",
      m->spec_.architecture, m->spec_.n_layers, m->spec_.hidden, m->spec_.vocab, dir,
      static_cast<int64_t>(kv.num_blocks) * kv.block_size, m->kv_->allocated_bytes() / 1048576.0);
  return m;
}

int64_t TextModel::max_context() const {
  const KvCacheShape& kv = kv_->shape();
  int64_t capacity = static_cast<int64_t>(kv.num_blocks) * kv.block_size;
  return spec_.max_context > 0 ? std::min(spec_.max_context, capacity) : capacity;
}

DType TextModel::WeightDType(const std::string& name) const {
  auto it = bound_dtypes_.find(name);
  return it == bound_dtypes_.end() ? DType::kF32 : it->second;
}

uint64_t TextModel::WeightBytes(const std::string& name) const {
  auto it = bound_bytes_.find(name);
  return it == bound_bytes_.end() ? 0 : it->second;
}

// Picks the matrices to quantize (2-D float tensors; the embedding / LM head only with
// quantize_head) and maps their quantized copies from the cache, making them on a miss.
Status TextModel::QuantizeWeights(const TextModelOptions& options) {
  if (options.quantize == QuantKind::kNone) return OkStatus();
  auto strip = [](const std::string& n) { return n.rfind("model.", 0) == 0 ? n.substr(6) : n; };
  const std::string embed = strip(spec_.w_embed), head = strip(spec_.w_lm_head);
  std::vector<std::string> names, head_names;
  for (const std::string& name : checkpoint_->TensorNames()) {
    const TensorInfo* t = checkpoint_->Find(name);
    if (t->shape.size() != 2 || !IrDType(*t).ok()) continue;
    const bool is_head = strip(name) == embed || strip(name) == head;
    if (is_head && !options.quantize_head) continue;
    if (t->shape[1] % TSR_QBLOCK != 0) {
      spdlog::info("{} stays {}: rows of {} values are not a multiple of 32", name,
                   StDTypeName(t->dtype), t->shape[1]);
      continue;
    }
    (is_head ? head_names : names).push_back(name);
  }
  QuantCacheOptions qo;
  qo.dir = !options.quant_cache_dir.empty() ? options.quant_cache_dir
                                            : DefaultCacheRoot(std::getenv) + "/quant";
  const auto t0 = std::chrono::steady_clock::now();
  for (auto [list, kind, out] : {std::tuple{&names, options.quantize, &quantized_},
                                 std::tuple{&head_names, QuantKind::kQ8, &quantized_head_}}) {
    if (list->empty()) continue;
    TSR_ASSIGN_OR_RETURN(*out, QuantizedWeights::Load(*checkpoint_, *list, kind, qo));
    spdlog::info("{} {} matrices ({:.1f} MiB) {} {} in {:.2f} s", QuantKindName(kind), list->size(),
                 (*out)->total_bytes() / 1048576.0,
                 (*out)->from_cache() ? "mapped from" : "quantized into", (*out)->path(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return OkStatus();
}

const QuantizedWeights* TextModel::QuantizedOf(const std::string& name) const {
  for (const auto* q : {quantized_.get(), quantized_head_.get()})
    if (q != nullptr && q->Find(name) != nullptr) return q;
  return nullptr;
}

Status TextModel::BindWeights() {
  // Matrices are used in place from the mmap; vectors (norms, biases) are small and become f32
  // so kernels see one dtype for them.
  for (const std::string& name : checkpoint_->TensorNames()) {
    const TensorInfo* t = checkpoint_->Find(name);
    std::vector<std::string> aliases = {name};
    if (name.rfind("model.", 0) == 0)
      aliases.push_back(name.substr(6));
    else
      aliases.push_back("model." + name);
    if (t->shape.size() <= 1) {
      TSR_ASSIGN_OR_RETURN(auto v, TensorToF32(*t));
      auto& stored = f32_weights_[name];
      stored = std::move(v);
      for (const auto& a : aliases) {
        ctx_->BindWeight(a, stored.data(), stored.size() * sizeof(float));
        bound_dtypes_[a] = DType::kF32;
      }
    } else if (const QuantizedWeights* qw = QuantizedOf(name)) {
      const QuantizedWeights::Entry* q = qw->Find(name);
      for (const auto& a : aliases) {
        ctx_->BindWeight(a, q->data, q->nbytes);
        bound_dtypes_[a] = qw->kind() == QuantKind::kQ8 ? DType::kQ8 : DType::kQ4;
        bound_bytes_[a] = q->nbytes;
      }
    } else {
      auto dt = IrDType(*t);
      if (!dt.ok()) continue;  // unusable tensors fail only if the graph asks for them
      for (const auto& a : aliases) {
        ctx_->BindWeight(a, t->data, t->nbytes);
        bound_dtypes_[a] = *dt;
        bound_bytes_[a] = t->nbytes;
      }
    }
  }
  for (const auto& [key, rope] : spec_.ropes) {
    auto& v = f32_weights_["rope." + key];
    v = rope.inv_freq;
    ctx_->BindWeight("rope." + key, v.data(), v.size() * sizeof(float));
    bound_dtypes_["rope." + key] = DType::kF32;
  }
  return OkStatus();
}

Status TextModel::Forward(const StepBatch& b, std::vector<float>* logits) {
  TSR_ASSIGN_OR_RETURN(StepShape shape, ShapeOf(b, /*argmax=*/false));
  TSR_ASSIGN_OR_RETURN(CachedStep * step, PrepareStep(shape));
  logits->resize(b.logit_rows.size() * static_cast<size_t>(spec_.vocab));
  return RunPrepared(*step, b, logits->data(), logits->size() * sizeof(float));
}

StatusOr<void*> TextModel::HostOutput(HostBuffer* buf, size_t bytes) {
  static const bool pinned = [] {
    const char* v = std::getenv("TESSERA_PINNED_LOGITS");
    return v == nullptr || std::string_view(v) != "0";
  }();
  if (buf->size() < bytes) {
    buf->Reset();  // grows only: a decode step's rows are the largest, and steady
    // The first device that offers host memory (the preferred one, ahead of a CPU fallback).
    Device* dev = nullptr;
    for (Device* d : ctx_->devices())
      if (pinned && dev == nullptr && d->has_host_alloc()) dev = d;
    TSR_ASSIGN_OR_RETURN(*buf, HostBuffer::Allocate(dev, bytes));
  }
  return buf->data();
}

StatusOr<std::span<const float>> TextModel::ForwardLogits(const StepBatch& b) {
  TSR_ASSIGN_OR_RETURN(StepShape shape, ShapeOf(b, /*argmax=*/false));
  TSR_ASSIGN_OR_RETURN(CachedStep * step, PrepareStep(shape));
  const size_t n = b.logit_rows.size() * static_cast<size_t>(spec_.vocab);
  TSR_ASSIGN_OR_RETURN(void* data, HostOutput(&logits_host_, n * sizeof(float)));
  TSR_RETURN_IF_ERROR(RunPrepared(*step, b, data, n * sizeof(float)));
  return std::span<const float>(static_cast<const float*>(data), n);
}

StatusOr<std::span<const int32_t>> TextModel::ForwardArgmax(const StepBatch& b) {
  // A bad batch fails here as it would on the logits path, before any fallback.
  TSR_ASSIGN_OR_RETURN(StepShape shape, ShapeOf(b, /*argmax=*/true));
  if (!argmax_unavailable_) {
    StatusOr<CachedStep*> step = PrepareStep(shape);
    if (step.ok()) {
      const size_t n = b.logit_rows.size();
      TSR_ASSIGN_OR_RETURN(void* data, HostOutput(&ids_host_, n * sizeof(int32_t)));
      TSR_RETURN_IF_ERROR(RunPrepared(**step, b, data, n * sizeof(int32_t)));
      return std::span<const int32_t>(static_cast<const int32_t*>(data), n);
    }
    // Most likely no device runs TSR_OP_ARGMAX (an older plugin): the devices do not change,
    // so stop trying. The host argmax gives the same ids.
    spdlog::info("greedy picks run on the host: the argmax step did not prepare ({})",
                 step.status().message());
    argmax_unavailable_ = true;
  }
  ++argmax_fallback_steps_;
  return ModelRunner::ForwardArgmax(b);
}

StatusOr<StepShape> TextModel::ShapeOf(const StepBatch& b, bool argmax) const {
  StepShape shape;
  shape.tokens = static_cast<int32_t>(b.tokens.size());
  shape.seqs = static_cast<int32_t>(b.kv_lens.size());
  shape.max_blocks = b.max_blocks;
  shape.logit_rows = static_cast<int32_t>(b.logit_rows.size());
  shape.kv_blocks = kv_->shape().num_blocks;
  shape.block_size = kv_->shape().block_size;
  shape.argmax = argmax;
  if (shape.tokens == 0 || shape.seqs == 0 || shape.logit_rows == 0)
    return InvalidArgument("a step needs at least one token, sequence and logit row");
  if (b.positions.size() != b.tokens.size() || b.slots.size() != b.tokens.size() ||
      b.cu_q.size() != b.kv_lens.size() + 1 ||
      b.block_table.size() != static_cast<size_t>(shape.seqs) * static_cast<size_t>(b.max_blocks))
    return InvalidArgument("inconsistent step batch");
  for (int32_t t : b.tokens)
    if (t < 0 || t >= spec_.vocab)
      return OutOfRange("token id " + std::to_string(t) + " is outside the vocabulary");
  return shape;
}

StatusOr<TextModel::CachedStep*> TextModel::PrepareStep(const StepShape& shape) {
  if (auto it = steps_.find(shape); it != steps_.end()) {
    it->second->last_used = ++step_clock_;
    return it->second.get();
  }
  if (steps_.size() >= kMaxCachedSteps) {
    auto oldest = std::min_element(steps_.begin(), steps_.end(), [](const auto& x, const auto& y) {
      return x.second->last_used < y.second->last_used;
    });
    steps_.erase(oldest);
  }
  auto step = std::make_unique<CachedStep>();
  step->graph = std::make_unique<Graph>();
  auto dtype = [this](const std::string& n) { return WeightDType(n); };
  TSR_ASSIGN_OR_RETURN(step->inputs, BuildDecoderGraph(spec_, shape, dtype, step->graph.get()));
  for (const TensorDesc& t : step->graph->tensors())
    if (t.kind == TensorKind::kWeight && !bound_dtypes_.count(t.name))
      return NotFound("the checkpoint has no tensor '" + t.name + "' (needed by " +
                      spec_.architecture + ")");
  TSR_ASSIGN_OR_RETURN(step->exe, Executable::Prepare(*ctx_, *step->graph));
  step->last_used = ++step_clock_;
  CachedStep* raw = step.get();
  steps_[shape] = std::move(step);
  return raw;
}

Status TextModel::RunPrepared(CachedStep& step, const StepBatch& b, void* out, size_t bytes) {
  const StepInputs& in = step.inputs;
  auto host = [](TensorId id, const std::vector<int32_t>& v) {
    return HostTensor{id, const_cast<int32_t*>(v.data()), v.size() * sizeof(int32_t)};
  };
  HostTensor inputs[] = {host(in.tokens, b.tokens),        host(in.positions, b.positions),
                         host(in.slots, b.slots),          host(in.block_table, b.block_table),
                         host(in.kv_lens, b.kv_lens),      host(in.cu_q, b.cu_q),
                         host(in.logit_rows, b.logit_rows)};
  HostTensor outputs[] = {{in.ids != kNoTensor ? in.ids : in.logits, out, bytes}};
  return step.exe->Run(inputs, outputs);
}

}  // namespace tessera::text
