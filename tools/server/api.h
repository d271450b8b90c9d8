// The REST API of `engine serve`: OpenAI-compatible (/v1/...), Ollama-compatible (/api/...),
// tokenizer utilities, /health and /metrics, over models served by batch schedulers.
// docs/server.md lists every endpoint.
#ifndef TESSERA_TOOLS_SERVER_API_H_
#define TESSERA_TOOLS_SERVER_API_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http_server.h"
#include "metrics.h"
#include "tessera/core/batching/batch_scheduler.h"
#include "tessera/text/text_model.h"

namespace tessera::server {

// A loaded model and the scheduler that owns its forward passes.
struct ServedModel {
  std::string name;  // what requests name it by ("default"; Ollama's "default:latest" also works)
  std::string dir;
  std::unique_ptr<text::TextModel> model;
  std::unique_ptr<batching::BatchScheduler> scheduler;
  ModelLatency latency;
  int64_t created_unix = 0;  // when it was loaded
  int64_t size_bytes = 0;    // weight files
  double load_seconds = 0;
};

class Api {
 public:
  explicit Api(std::string version);

  // Sets the served models and starts answering model requests (/health turns 200). Call once;
  // the models must outlive the Api's use. Thread-safe against concurrent Handle().
  void SetReady(std::vector<ServedModel*> models);

  // The HttpHandler. Thread-safe.
  HttpReply Handle(const HttpRequest& req);

  Metrics& metrics() { return metrics_; }

  struct Context;  // what the endpoint handlers share (api_internal.h)

 private:
  HttpReply Route(const HttpRequest& req, std::string* endpoint);

  std::string version_;
  Metrics metrics_;
  std::atomic<bool> ready_{false};
  std::vector<ServedModel*> models_;  // written once before ready_ is set
};

}  // namespace tessera::server

#endif  // TESSERA_TOOLS_SERVER_API_H_
