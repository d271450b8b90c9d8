#include "server.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>

#include "api.h"
#include "api_internal.h"
#include "tessera/text/decoder.h"

namespace tessera::server {
namespace {

namespace fs = std::filesystem;

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

std::string UniqueName(const std::string& dir,
                       const std::vector<std::unique_ptr<ServedModel>>& models) {
  std::string base = fs::path(dir).filename().string();
  if (base.empty()) base = fs::path(dir).parent_path().filename().string();
  if (base.empty()) base = "model";
  std::string name = base;
  for (int i = 2;; ++i) {
    bool taken = false;
    for (const auto& m : models) taken |= m->name == name;
    if (!taken) return name;
    name = base + "-" + std::to_string(i);
  }
}

StatusOr<std::unique_ptr<ServedModel>> LoadServedModel(const ServeOptions& o,
                                                       const std::string& dir,
                                                       const std::vector<Device*>& devices,
                                                       int64_t budget, std::mutex* forward_mutex) {
  auto t0 = std::chrono::steady_clock::now();
  int64_t max_context = 0;
  TSR_ASSIGN_OR_RETURN(int64_t per_token, KvBytesPerToken(dir, &max_context));
  text::TextModelOptions mo;
  mo.kv_budget_bytes = budget;
  mo.kv_tokens = std::max<int64_t>(
      mo.kv_block_size,
      std::min(budget / std::max<int64_t>(1, per_token), max_context * o.kv_max_sequences));
  auto sm = std::make_unique<ServedModel>();
  sm->dir = dir;
  TSR_ASSIGN_OR_RETURN(sm->model, text::TextModel::Load(dir, devices, mo));
  batching::SchedulerOptions so = o.scheduler;
  so.forward_mutex = forward_mutex;
  sm->scheduler = std::make_unique<batching::BatchScheduler>(*sm->model, so);
  sm->created_unix = UnixNow();
  sm->size_bytes = WeightBytes(dir);
  sm->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sm;
}

}  // namespace

ServeOptions ServeOptionsFromSettings(const Settings& s) {
  ServeOptions o;
  o.http.host = s.GetString("server_host");
  o.http.port = static_cast<uint16_t>(s.GetInt("server_port"));
  o.http.threads = static_cast<int>(s.GetInt("server_threads"));
  o.http.header_timeout = std::chrono::milliseconds(s.GetInt("server_header_timeout_ms"));
  o.http.body_timeout = std::chrono::milliseconds(s.GetInt("server_body_timeout_ms"));
  o.http.write_timeout = std::chrono::milliseconds(s.GetInt("server_write_timeout_ms"));
  o.http.max_body_bytes = static_cast<uint64_t>(s.GetInt("server_max_body"));
  o.scheduler.max_batch_tokens = static_cast<int32_t>(s.GetInt("max_batch_tokens"));
  o.scheduler.max_queue = static_cast<int32_t>(s.GetInt("max_queue"));
  o.scheduler.max_running = static_cast<int32_t>(s.GetInt("max_running"));
  o.scheduler.prefix_caching = s.GetBool("prefix_caching");
  o.kv_budget_bytes = s.GetInt("kv_budget");
  o.kv_budget_share = s.GetFloat("kv_budget_share");
  return o;
}

int Serve(const ServeOptions& o, const std::vector<Device*>& devices) {
  if (o.model_dirs.empty() || devices.empty()) {
    std::fprintf(stderr, "error: serve needs at least one model and one device\n");
    return 2;
  }
  // Signals go to sigwait() below, never to a handler on a random thread: block them before any
  // thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Api api(o.version);
  auto http = HttpServer::Start(o.http, [&api](const HttpRequest& r) { return api.Handle(r); });
  if (!http.ok()) {
    std::fprintf(stderr, "error: %s\n", http.status().message().c_str());
    return 1;
  }
  std::printf("listening on http://%s:%u\n", o.http.host.c_str(),
              static_cast<unsigned>((*http)->port()));
  std::fflush(stdout);

  // KV budget: a share of what the first device has free after the weights, split evenly.
  int64_t weights = 0;
  for (const auto& d : o.model_dirs) weights += WeightBytes(d);
  const int64_t free_bytes = static_cast<int64_t>(devices[0]->props().memory_free);
  int64_t budget = o.kv_budget_bytes;
  if (budget <= 0) {
    const int64_t after = std::max<int64_t>(0, free_bytes - weights);
    budget = static_cast<int64_t>(o.kv_budget_share * static_cast<double>(after)) /
             static_cast<int64_t>(o.model_dirs.size());
    if (free_bytes == 0) budget = 1LL << 30;  // the device does not report memory
  }
  std::mutex forward_mutex;  // models share devices: one forward pass at a time
  std::vector<std::unique_ptr<ServedModel>> models;
  for (const std::string& dir : o.model_dirs) {
    auto m = LoadServedModel(o, dir, devices, budget, &forward_mutex);
    if (!m.ok()) {
      std::fprintf(stderr, "error: %s: %s\n", dir.c_str(), m.status().message().c_str());
      (*http)->Stop();
      return 1;
    }
    (*m)->name = UniqueName(dir, models);
    const auto& kv = (*m)->model->kv_cache().shape();
    spdlog::info(
        "serving '{}': context {}, KV cache {} blocks x {} tokens ({:.1f} MiB), up to {} running "
        "sequences",
        (*m)->name, (*m)->scheduler->max_context(), kv.num_blocks, kv.block_size,
        kv.TotalBytes() / 1048576.0, (*m)->scheduler->max_running());
    models.push_back(std::move(m).value());
  }
  std::vector<ServedModel*> raw;
  for (auto& m : models) {
    m->scheduler->Start();
    raw.push_back(m.get());
  }
  api.SetReady(raw);
  spdlog::info("ready: {} model(s) on http://{}:{}", models.size(), o.http.host, (*http)->port());

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down", sig);
  (*http)->Stop();
  (*http)->Wait();
  http->reset();  // connections (and their jobs) go before the schedulers and models they use
  for (auto& m : models) m->scheduler->Stop();
  return 0;
}

}  // namespace tessera::server
