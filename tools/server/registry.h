// The models a server has loaded: loads a model on the first request that names it, unloads idle
// ones after their keep-alive, and keeps every loaded model of every modality within one memory
// budget (weights + KV cache), evicting the least recently used idle model to make room.
//
// Threads: every method is thread-safe. Loading runs on the requesting thread (one load at a
// time); requests for models already loaded never wait for a load.
#ifndef TESSERA_TOOLS_SERVER_REGISTRY_H_
#define TESSERA_TOOLS_SERVER_REGISTRY_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "metrics.h"
#include "tessera/core/batching/batch_scheduler.h"
#include "tessera/core/device.h"
#include "tessera/core/model/quantize.h"
#include "tessera/core/status.h"
#include "tessera/embedding/encoder_model.h"
#include "tessera/text/text_model.h"

namespace tessera::server {

using Seconds = std::chrono::seconds;
inline constexpr Seconds kForever{-1};

// A loaded model and what serves it.
struct ServedModel {
  std::string name;  // what requests name it by (Ollama's "NAME:latest" also works)
  std::string dir;
  std::string modality = "text";  // text | embedding | rerank
  std::string architecture;       // config.json architectures[0]
  std::string family;             // config.json model_type
  int64_t context_length = 0;
  // Text models: the model and the scheduler that owns its forward passes.
  std::unique_ptr<text::TextModel> model;
  std::unique_ptr<batching::BatchScheduler> scheduler;
  // Embedding and rerank models (thread-safe; forward passes serialized inside).
  std::unique_ptr<embedding::EncoderModel> encoder;
  ModelLatency latency;
  int64_t created_unix = 0;  // when it was loaded
  int64_t size_bytes = 0;    // weight files
  int64_t parameters = 0;    // from the safetensors headers (0 if unknown)
  int64_t memory_bytes = 0;  // what it holds against the budget: weights + KV cache
  double load_seconds = 0;
  bool pinned = false;  // named at start (--model): never unloaded for being idle

  // Registry bookkeeping, guarded by the registry's mutex.
  std::chrono::steady_clock::time_point last_used;
  Seconds keep_alive{0};
};

// Turns a model name from a request into a local model folder. NotFound when the name is not
// available locally (the message says how to get it).
using ModelResolver = std::function<StatusOr<std::string>(const std::string& name)>;

struct RegistryOptions {
  std::vector<Device*> devices;          // priority order, not owned
  batching::SchedulerOptions scheduler;  // per model (forward_mutex is set by the registry)
  int64_t memory_budget = 0;    // bytes for all loaded models; 0 = the first device's free memory
  int64_t kv_budget_bytes = 0;  // per model; 0 = kv_budget_share of what the budget leaves
  double kv_budget_share = 0.5;
  int64_t kv_max_sequences = 64;          // cap of the automatic KV size in full-context sequences
  Seconds keep_alive{300};                // default idle time before a model is unloaded
  ModelResolver resolve;                  // null: only pinned models are served
  QuantKind quantize = QuantKind::kNone;  // text models' weights (setting quantize)
};

class ModelRegistry {
 public:
  explicit ModelRegistry(RegistryOptions options);
  ~ModelRegistry();  // stops every scheduler
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // Loads the models named at start; they stay loaded. `names` parallel `dirs`.
  Status LoadPinned(const std::vector<std::string>& dirs, const std::vector<std::string>& names);

  // The model `name` refers to, loaded if needed. An empty name means "the only model": the
  // single pinned or loaded model, else InvalidArgument. `keep_alive` (if set) replaces the
  // model's idle time, as Ollama's request field does. The returned pointer keeps the model
  // loaded while held.
  StatusOr<std::shared_ptr<ServedModel>> Acquire(const std::string& name,
                                                 std::optional<Seconds> keep_alive = {});

  // Unloads `name` now if nothing uses it (Ollama's keep_alive: 0); NotFound when not loaded,
  // FailedPrecondition when busy.
  Status Unload(const std::string& name);

  std::vector<std::shared_ptr<ServedModel>> Loaded() const;

  // The loaded model `name` refers to (by name, NAME:latest or folder), or null; never loads.
  std::shared_ptr<ServedModel> FindLoaded(const std::string& name) const;

  // When an idle model will be unloaded; nullopt = never.
  std::optional<std::chrono::system_clock::time_point> ExpiresAt(const ServedModel& m) const;

  int64_t memory_budget() const { return budget_; }
  int64_t memory_used() const;

 private:
  // kv_bytes: the model's KV cache budget; 0 = automatic.
  StatusOr<std::unique_ptr<ServedModel>> LoadModel(const std::string& dir, const std::string& name,
                                                   int64_t kv_bytes);
  StatusOr<std::unique_ptr<ServedModel>> LoadEncoder(const std::string& dir,
                                                     const std::string& name,
                                                     const embedding::ModelInfo& info);
  // Unloads idle, unpinned models, least recently used first, until `need` bytes fit. Returns
  // false when they do not. Caller holds mu_.
  bool MakeRoomLocked(int64_t need);
  bool IdleLocked(const std::shared_ptr<ServedModel>& m) const;
  void ReapLoop();

  RegistryOptions options_;
  int64_t budget_ = 0;
  std::mutex forward_mutex_;  // models share the devices: one forward pass at a time
  std::mutex load_mutex_;     // one load at a time
  mutable std::mutex mu_;
  std::condition_variable reaper_cv_;
  bool stopping_ = false;
  std::vector<std::shared_ptr<ServedModel>> models_;  // guarded by mu_
  std::thread reaper_;
};

}  // namespace tessera::server

#endif  // TESSERA_TOOLS_SERVER_REGISTRY_H_
