#include "registry.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "tessera/core/model/hf_config.h"
#include "tessera/hub/models.h"
#include "tessera/text/decoder.h"

namespace tessera::server {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t WeightBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") total += static_cast<int64_t>(e.file_size(ec));
  return total;
}

// KV bytes per token of `dir`'s model (K and V, every layer, f32 pools).
StatusOr<int64_t> KvBytesPerToken(const std::string& dir, int64_t* max_context) {
  TSR_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  TSR_ASSIGN_OR_RETURN(text::DecoderSpec spec, text::ArchitectureRegistry::Get().MakeSpec(config));
  *max_context = spec.max_context > 0 ? spec.max_context : 4096;
  return 2 * spec.n_kv_heads * spec.head_dim * static_cast<int64_t>(sizeof(float)) * spec.n_layers;
}

// A request may name models, never folders: a remote client must not make the server read
// arbitrary paths. Folders are served by naming them at start (--model PATH).
bool LooksLikePath(const std::string& name) {
  return name.empty() || name[0] == '/' || name[0] == '.' || name[0] == '~' ||
         name.find('\\') != std::string::npos || name.find("..") != std::string::npos ||
         name.find('\0') != std::string::npos;
}

int64_t ParameterCount(const std::string& dir) {
  auto d = hub::InspectFolder(dir);
  return d.ok() ? d->parameters : 0;
}

// The name a folder is served under: ORG/NAME for a Hugging Face cache snapshot, else the
// folder's own name.
std::string NameFor(const std::string& dir) {
  if (std::string repo = hub::RepoOfSnapshotDir(dir); !repo.empty()) return repo;
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::string base = p.filename().string();
  return base.empty() ? "model" : base;
}

std::string StripLatest(const std::string& name) {
  const std::string tag = ":latest";
  if (name.size() > tag.size() && name.compare(name.size() - tag.size(), tag.size(), tag) == 0)
    return name.substr(0, name.size() - tag.size());
  return name;
}

}  // namespace

ModelRegistry::ModelRegistry(RegistryOptions options) : options_(std::move(options)) {
  budget_ = options_.memory_budget;
  if (budget_ <= 0 && !options_.devices.empty())
    budget_ = static_cast<int64_t>(options_.devices[0]->props().memory_free);
  if (budget_ <= 0) budget_ = INT64_MAX;  // the device does not report its memory
  reaper_ = std::thread([this] { ReapLoop(); });
}

ModelRegistry::~ModelRegistry() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  reaper_cv_.notify_all();
  reaper_.join();
  for (auto& m : models_)
    if (m->scheduler) m->scheduler->Stop();
}

StatusOr<std::unique_ptr<ServedModel>> ModelRegistry::LoadEncoder(
    const std::string& dir, const std::string& name, const embedding::ModelInfo& info) {
  const auto t0 = SteadyClock::now();
  const int64_t weights = WeightBytes(dir);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (budget_ != INT64_MAX && !MakeRoomLocked(weights))
      return ResourceExhausted("not enough memory to load '" + name + "' (" +
                               std::to_string(weights >> 20) + " MiB needed, " +
                               std::to_string((budget_ - memory_used()) >> 20) +
                               " MiB free of the budget)");
  }
  auto sm = std::make_unique<ServedModel>();
  sm->dir = dir;
  sm->name = name;
  sm->modality = info.kind == embedding::ModelKind::kEmbedding ? "embedding" : "rerank";
  TSR_ASSIGN_OR_RETURN(sm->encoder, embedding::EncoderModel::Load(dir, options_.devices));
  sm->architecture = info.architecture;
  TSR_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  sm->family = config.model_type;
  sm->context_length = sm->encoder->max_tokens();
  sm->created_unix = UnixSeconds();
  sm->size_bytes = weights;
  sm->parameters = ParameterCount(dir);
  sm->memory_bytes = weights;
  sm->load_seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  sm->last_used = SteadyClock::now();
  sm->keep_alive = options_.keep_alive;
  spdlog::info("loaded {} model '{}' ({}, {} pooling) in {:.2f}s", sm->modality, name,
               info.architecture, embedding::PoolingName(info.pooling), sm->load_seconds);
  return sm;
}

StatusOr<std::unique_ptr<ServedModel>> ModelRegistry::LoadModel(const std::string& dir,
                                                                const std::string& name,
                                                                int64_t kv_bytes) {
  // Embedding and rerank models are recognised from the checkpoint; the rest is a text model.
  if (auto info = embedding::DetectModel(dir); info.ok()) return LoadEncoder(dir, name, *info);
  const auto t0 = SteadyClock::now();
  int64_t max_context = 0;
  TSR_ASSIGN_OR_RETURN(int64_t per_token, KvBytesPerToken(dir, &max_context));
  const int64_t weights = WeightBytes(dir);
  text::TextModelOptions mo;
  // KV cache tokens for a byte budget: whole blocks, at least one, at most kv_max_sequences
  // full contexts.
  auto tokens_for = [&](int64_t bytes) {
    const int64_t blocks =
        std::min(bytes / per_token, max_context * options_.kv_max_sequences) / mo.kv_block_size;
    return std::max<int64_t>(1, blocks) * mo.kv_block_size;
  };
  int64_t kv = kv_bytes > 0 ? kv_bytes : options_.kv_budget_bytes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The smallest useful cache: a few thousand tokens of context.
    const int64_t kv_min =
        per_token * tokens_for(kv > 0 ? kv : per_token * std::min<int64_t>(max_context, 4096));
    if (budget_ != INT64_MAX && !MakeRoomLocked(weights + kv_min)) {
      std::string busy;
      for (const auto& m : models_) busy += (busy.empty() ? "" : ", ") + m->name;
      return ResourceExhausted("not enough memory to load '" + name + "' (" +
                               std::to_string((weights + kv_min) >> 20) + " MiB needed, " +
                               std::to_string((budget_ - memory_used()) >> 20) +
                               " MiB free of the budget; in use: " + busy + ")");
    }
    if (kv <= 0) {
      const int64_t left = budget_ == INT64_MAX ? (2LL << 30) : budget_ - memory_used() - weights;
      kv = std::max(static_cast<int64_t>(options_.kv_budget_share * static_cast<double>(left)),
                    kv_min);
    }
  }
  mo.quantize = options_.quantize;
  mo.kv_tokens = tokens_for(kv);
  mo.kv_budget_bytes = mo.kv_tokens * per_token;
  auto sm = std::make_unique<ServedModel>();
  sm->dir = dir;
  sm->name = name;
  TSR_ASSIGN_OR_RETURN(sm->model, text::TextModel::Load(dir, options_.devices, mo));
  batching::SchedulerOptions so = options_.scheduler;
  so.forward_mutex = &forward_mutex_;
  sm->scheduler = std::make_unique<batching::BatchScheduler>(*sm->model, so);
  sm->architecture = sm->model->spec().architecture;
  sm->family = sm->model->config().model_type;
  sm->context_length = sm->scheduler->max_context();
  sm->created_unix = UnixSeconds();
  sm->size_bytes = weights;
  sm->parameters = ParameterCount(dir);
  sm->memory_bytes = weights + sm->model->kv_cache().allocated_bytes();
  sm->load_seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  sm->last_used = SteadyClock::now();
  sm->keep_alive = options_.keep_alive;
  const auto& shape = sm->model->kv_cache().shape();
  spdlog::info(
      "loaded '{}' in {:.2f}s: context {}, KV cache {} blocks x {} tokens ({:.1f} MiB), up to {} "
      "running sequences",
      name, sm->load_seconds, sm->scheduler->max_context(), shape.num_blocks, shape.block_size,
      sm->model->kv_cache().allocated_bytes() / 1048576.0, sm->scheduler->max_running());
  sm->scheduler->Start();
  return sm;
}

Status ModelRegistry::LoadPinned(const std::vector<std::string>& dirs,
                                 const std::vector<std::string>& names) {
  std::lock_guard<std::mutex> load(load_mutex_);
  // The automatic KV budget is split evenly between the models named at start.
  int64_t kv_each = options_.kv_budget_bytes;
  if (kv_each <= 0 && budget_ != INT64_MAX && !dirs.empty()) {
    int64_t weights = 0;
    for (const auto& d : dirs) weights += WeightBytes(d);
    const int64_t after = std::max<int64_t>(0, budget_ - weights);
    kv_each = static_cast<int64_t>(options_.kv_budget_share * static_cast<double>(after)) /
              static_cast<int64_t>(dirs.size());
  }
  for (size_t i = 0; i < dirs.size(); ++i) {
    std::string name = i < names.size() && !names[i].empty() ? names[i] : NameFor(dirs[i]);

    {
      std::lock_guard<std::mutex> lock(mu_);
      const std::string base = name;
      for (int k = 2; std::any_of(models_.begin(), models_.end(),
                                  [&](const auto& m) { return m->name == name; });
           ++k)
        name = base + "-" + std::to_string(k);
    }
    auto m = LoadModel(dirs[i], name, kv_each);
    if (!m.ok()) return Status(m.status().code(), dirs[i] + ": " + m.status().message());
    (*m)->pinned = true;
    (*m)->keep_alive = kForever;
    std::lock_guard<std::mutex> lock(mu_);
    models_.push_back(std::move(m).value());
  }
  return OkStatus();
}

StatusOr<std::shared_ptr<ServedModel>> ModelRegistry::Acquire(const std::string& requested,
                                                              std::optional<Seconds> keep_alive) {
  auto take = [&](const std::shared_ptr<ServedModel>& m) {
    m->last_used = SteadyClock::now();
    if (keep_alive && !m->pinned) m->keep_alive = *keep_alive;
    return m;
  };
  const std::string name = StripLatest(requested);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (name.empty()) {
      if (models_.size() == 1) return take(models_[0]);
      return InvalidArgument(models_.empty() ? "'model' is required (no model is loaded yet)"
                                             : "'model' is required (several models are loaded)");
    }
    for (const auto& m : models_)
      if (m->name == name || m->dir == requested) return take(m);
  }
  if (!options_.resolve)
    return NotFound("model '" + requested + "' is not served (GET /v1/models lists them)");
  if (LooksLikePath(name))
    return NotFound("model '" + requested +
                    "' is not served; requests name models (ORG/NAME or an alias), not folders "
                    "(serve a folder with `engine serve --model PATH`)");
  TSR_ASSIGN_OR_RETURN(std::string dir, options_.resolve(name));
  std::lock_guard<std::mutex> load(load_mutex_);
  {
    std::lock_guard<std::mutex> lock(mu_);  // loaded meanwhile, or under another name?
    for (const auto& m : models_)
      if (m->dir == dir) return take(m);
  }
  TSR_ASSIGN_OR_RETURN(std::unique_ptr<ServedModel> loaded, LoadModel(dir, name, 0));
  std::shared_ptr<ServedModel> m = std::move(loaded);
  std::lock_guard<std::mutex> lock(mu_);
  models_.push_back(m);
  return take(m);
}

bool ModelRegistry::IdleLocked(const std::shared_ptr<ServedModel>& m) const {
  if (m.use_count() > 1) return false;  // a request holds it
  if (!m->scheduler) return true;
  const batching::SchedulerStats st = m->scheduler->Stats();
  return st.running == 0 && st.waiting == 0 && st.preempted_waiting == 0;
}

bool ModelRegistry::MakeRoomLocked(int64_t need) {
  while (budget_ - memory_used() < need) {
    std::shared_ptr<ServedModel>* victim = nullptr;
    for (auto& m : models_)
      if (!m->pinned && IdleLocked(m) && (!victim || m->last_used < (*victim)->last_used))
        victim = &m;
    if (!victim) return false;
    std::shared_ptr<ServedModel> m = std::move(*victim);
    models_.erase(std::remove(models_.begin(), models_.end(), nullptr), models_.end());
    spdlog::info("unloading '{}' to make room ({} MiB)", m->name, m->memory_bytes >> 20);
    if (m->scheduler) m->scheduler->Stop();  // idle: nothing to cancel
  }
  return true;
}

Status ModelRegistry::Unload(const std::string& requested) {
  const std::string name = StripLatest(requested);
  std::shared_ptr<ServedModel> victim;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(models_.begin(), models_.end(),
                           [&](const auto& m) { return m->name == name; });
    if (it == models_.end()) return NotFound("model '" + requested + "' is not loaded");
    if (!IdleLocked(*it))
      return FailedPrecondition("model '" + requested + "' is busy; it unloads once idle");
    victim = std::move(*it);
    models_.erase(it);
  }
  spdlog::info("unloading '{}'", victim->name);
  if (victim->scheduler) victim->scheduler->Stop();
  return OkStatus();
}

std::shared_ptr<ServedModel> ModelRegistry::FindLoaded(const std::string& requested) const {
  const std::string name = StripLatest(requested);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& m : models_)
    if (m->name == name || m->dir == requested) return m;
  return nullptr;
}

std::vector<std::shared_ptr<ServedModel>> ModelRegistry::Loaded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return models_;
}

int64_t ModelRegistry::memory_used() const {
  int64_t used = 0;
  for (const auto& m : models_) used += m->memory_bytes;
  return used;
}

std::optional<std::chrono::system_clock::time_point> ModelRegistry::ExpiresAt(
    const ServedModel& m) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (m.pinned || m.keep_alive < Seconds::zero()) return std::nullopt;
  const auto idle_for = SteadyClock::now() - m.last_used;
  return std::chrono::system_clock::now() - std::chrono::duration_cast<Seconds>(idle_for) +
         m.keep_alive;
}

// Once a second: a model in use has its idle clock reset; an idle one past its keep-alive goes.
void ModelRegistry::ReapLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    reaper_cv_.wait_for(lock, std::chrono::seconds(1));
    if (stopping_) break;
    const auto now = SteadyClock::now();
    std::vector<std::shared_ptr<ServedModel>> expired;
    for (auto& m : models_) {
      if (m->pinned || m->keep_alive < Seconds::zero()) continue;
      if (!IdleLocked(m))
        m->last_used = now;
      else if (now - m->last_used >= m->keep_alive)
        expired.push_back(std::move(m));
    }
    if (expired.empty()) continue;
    models_.erase(std::remove(models_.begin(), models_.end(), nullptr), models_.end());
    lock.unlock();
    for (auto& m : expired) {
      spdlog::info("unloading '{}': idle for its keep-alive", m->name);
      if (m->scheduler) m->scheduler->Stop();
    }
    expired.clear();
    lock.lock();
  }
}

}  // namespace tessera::server
