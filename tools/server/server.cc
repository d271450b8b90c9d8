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
#include "tessera/hub/names.h"
#include "tessera/text/decoder.h"

namespace tessera::server {
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
  if (auto q = ParseQuantKind(s.GetString("quantize")); q.ok()) o.quantize = *q;
  o.memory_budget = s.GetInt("memory_budget");
  o.keep_alive = Seconds(s.GetInt("keep_alive"));
  return o;
}

int Serve(const ServeOptions& o, const std::vector<Device*>& devices) {
  if ((o.model_dirs.empty() && !o.hub) || devices.empty()) {
    std::fprintf(stderr, "error: serve needs a model (or a way to load them) and a device\n");
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
  api.SetHub(o.hub);
  auto http = HttpServer::Start(o.http, [&api](const HttpRequest& r) { return api.Handle(r); });
  if (!http.ok()) {
    std::fprintf(stderr, "error: %s\n", http.status().message().c_str());
    return 1;
  }
  std::printf("listening on http://%s:%u\n", o.http.host.c_str(),
              static_cast<unsigned>((*http)->port()));
  std::fflush(stdout);

  RegistryOptions ro;
  ro.devices = devices;
  ro.scheduler = o.scheduler;
  ro.memory_budget = o.memory_budget;
  ro.kv_budget_bytes = o.kv_budget_bytes;
  ro.kv_budget_share = o.kv_budget_share;
  ro.kv_max_sequences = o.kv_max_sequences;
  ro.keep_alive = o.keep_alive;
  ro.quantize = o.quantize;
  if (o.hub) {
    ro.resolve = [hub = *o.hub](const std::string& name) -> StatusOr<std::string> {
      TSR_ASSIGN_OR_RETURN(hub::ResolvedModel r, hub::ResolveModel(name, hub));
      if (r.kind == hub::ResolvedModel::Kind::kFolder)
        return NotFound("model '" + name + "' is not served; requests name models, not folders");
      if (!r.present())
        return NotFound("model '" + name + "' is not downloaded; pull it first (`engine pull " +
                        name + "` or POST /api/pull)");
      return r.dir;
    };
  }
  auto registry = std::make_unique<ModelRegistry>(std::move(ro));
  if (Status st = registry->LoadPinned(o.model_dirs, o.model_names); !st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.message().c_str());
    (*http)->Stop();
    return 1;
  }
  api.SetReady(registry.get());
  spdlog::info("ready: {} model(s) on http://{}:{} (memory budget {} MiB)",
               registry->Loaded().size(), o.http.host, (*http)->port(),
               registry->memory_budget() == INT64_MAX ? -1 : registry->memory_budget() >> 20);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down", sig);
  (*http)->Stop();
  (*http)->Wait();
  http->reset();      // connections (and their jobs) go before the schedulers and models they use
  api.StopWorkers();  // embedding/rerank work still queued finishes
  registry.reset();   // stops every scheduler
  return 0;
}

}  // namespace tessera::server
