// `engine serve` as a library: loads models onto devices, runs one batch scheduler per model and
// the HTTP server in front of them until a signal (SIGINT/SIGTERM) arrives.
#ifndef TESSERA_TOOLS_SERVER_SERVER_H_
#define TESSERA_TOOLS_SERVER_SERVER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http_server.h"
#include "registry.h"
#include "tessera/core/batching/batch_scheduler.h"
#include "tessera/core/device.h"
#include "tessera/core/model/quantize.h"
#include "tessera/core/settings.h"
#include "tessera/hub/options.h"

namespace tessera::server {

struct ServeOptions {
  // Models loaded at start and kept loaded: Hugging Face model folders, and the names they are
  // served under ("" = derived from the folder). Others load on first request through
  // `resolve`.
  std::vector<std::string> model_dirs;
  std::vector<std::string> model_names;
  // The Hugging Face cache: requests load cached models by name, /api/pull downloads, /api/tags
  // lists what is cached, /api/delete removes. Unset: only the models named at start are served.
  std::optional<hub::HubOptions> hub;
  int64_t memory_budget = 0;  // all loaded models together; 0 = free memory of the first device
  Seconds keep_alive{300};
  HttpServerOptions http;
  batching::SchedulerOptions scheduler;  // per model
  int64_t kv_budget_bytes = 0;           // per model; 0 = kv_budget_share of the free budget
  double kv_budget_share = 0.5;
  // Cap of the automatic KV size, in full-context sequences per model: a tiny model on a big
  // machine does not need gigabytes of cache.
  int64_t kv_max_sequences = 64;
  // Weight quantization at load (setting quantize; docs/quantization.md).
  QuantKind quantize = QuantKind::kNone;
  std::string version = "0.0.0";
};

// Fills `options` (all but model_dirs and version) from the settings table (docs/server.md).
// The `quantize` setting is validated by the table (an enum), so it always parses here.
ServeOptions ServeOptionsFromSettings(const Settings& settings);

// Serves until SIGINT or SIGTERM; returns the process exit code. `devices` are in priority order
// and not owned. Blocks SIGINT/SIGTERM in the calling thread (and so in every thread it starts);
// threads started earlier (a backend's pool) must have them blocked already, or a signal may
// kill the process instead of stopping it cleanly.
// Prints "listening on http://HOST:PORT" to stdout once the port is bound (before the models
// are loaded: /health answers 503 until they are).
int Serve(const ServeOptions& options, const std::vector<Device*>& devices);

}  // namespace tessera::server

#endif  // TESSERA_TOOLS_SERVER_SERVER_H_
