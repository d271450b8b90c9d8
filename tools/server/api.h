// The REST API of `engine serve`: OpenAI-compatible (/v1/...), Ollama-compatible (/api/...),
// tokenizer utilities, /health and /metrics, over models served by batch schedulers.
// docs/server.md lists every endpoint.
#ifndef TESSERA_TOOLS_SERVER_API_H_
#define TESSERA_TOOLS_SERVER_API_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http_server.h"
#include "metrics.h"
#include "registry.h"
#include "tessera/hub/options.h"

namespace tessera::server {

class WorkerPool;
class PullTracker;

class Api {
 public:
  explicit Api(std::string version);
  ~Api();

  // The Hugging Face cache behind /api/pull, /api/delete and the model lists (unset: none).
  // Call before SetReady.
  void SetHub(std::optional<hub::HubOptions> hub) { hub_ = std::move(hub); }

  // Sets the model registry and starts answering model requests (/health turns 200). Call once;
  // the registry must outlive the Api's use. Thread-safe against concurrent Handle().
  void SetReady(ModelRegistry* models);

  // The HttpHandler. Thread-safe.
  HttpReply Handle(const HttpRequest& req);

  Metrics& metrics() { return metrics_; }

  // Finishes queued embedding/rerank work and stops the worker threads; call before the models
  // go away. Handle() must no longer be called.
  void StopWorkers();

  struct Context;  // what the endpoint handlers share (api_internal.h)

 private:
  HttpReply Route(const HttpRequest& req, std::string* endpoint);

  std::string version_;
  Metrics metrics_;
  std::atomic<bool> ready_{false};
  ModelRegistry* models_ = nullptr;  // written once before ready_ is set
  std::unique_ptr<WorkerPool> workers_, pulls_;
  std::unique_ptr<PullTracker> pull_jobs_;
  std::optional<hub::HubOptions> hub_;
};

}  // namespace tessera::server

#endif  // TESSERA_TOOLS_SERVER_API_H_
