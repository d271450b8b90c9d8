// `engine serve [--model PATH]...`: the OpenAI- and Ollama-compatible REST server
// (docs/server.md). Flags are shorthands for settings (`engine config --list`), so the same
// knobs also come from the config file and TESSERA_* variables.
#include <pthread.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>

#include "commands.h"
#include "quantize_flag.h"
#include "server.h"
#include "tessera/hub/options.h"

#ifndef TESSERA_VERSION
#define TESSERA_VERSION "0.0.0"
#endif

namespace tessera::cli {
namespace {

namespace fs = std::filesystem;

struct ServeFlags {
  std::vector<std::string> models;
  std::string host, port, kv_budget, max_batch_tokens, max_queue, max_running;
  std::string quantize;
};

int ServeMain(GlobalFlags* g, const ServeFlags& f) {
  // SIGINT/SIGTERM are taken by server::Serve's sigwait(): block them before any thread starts
  // (the CPU plugin's pool starts when devices open) so no thread dies of the default action.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto settings = ResolveSettings(*g);
  if (!settings.ok()) return Fail(settings.status());
  auto set = [&](const char* name, const std::string& v) {
    return v.empty() ? OkStatus() : settings->Set(name, v, SettingSource::kCommandLine);
  };
  for (Status st :
       {set("server_host", f.host), set("server_port", f.port), set("kv_budget", f.kv_budget),
        set("max_batch_tokens", f.max_batch_tokens), set("max_queue", f.max_queue),
        set("max_running", f.max_running), set("quantize", f.quantize)})
    if (!st.ok()) return Fail(st);
  server::ServeOptions o = server::ServeOptionsFromSettings(*settings);
  o.version = TESSERA_VERSION;
  o.model_dirs = f.models;
  if (o.model_dirs.empty()) {
    std::string d = DefaultModelDir();
    if (d.empty())
      return Fail(NotFound("no --model given and the bundled default model is not installed"));
    o.model_dirs.push_back(d);
  }
  for (auto& d : o.model_dirs) {  // folders, aliases or ORG/NAME[@REV] (docs/models.md)
    auto dir = ResolveModelDir(d, /*pull_if_missing=*/true);
    if (!dir.ok()) return Fail(dir.status());
    std::error_code ec;
    // A model named by alias or ORG/NAME is served under that name; a folder under its own.
    o.model_names.push_back(fs::is_directory(d, ec) ? "" : d);
    d = *dir;
  }
  // Requests may name any cached model; /api/pull and /api/delete manage the cache.
  o.hub = hub::HubOptions::FromEnvironment([](const char* n) { return std::getenv(n); });
  auto reg = LoadPlugins(*settings, WithInt8Dot(*g, o.quantize));
  auto devs = OpenDevices(*reg, settings->GetString("backend"));
  if (!devs.ok()) return Fail(devs.status());
  return server::Serve(o, devs->ordered);
}

}  // namespace

Handler AddServeCommand(CLI::App& app, GlobalFlags* g) {
  auto* cmd = app.add_subcommand("serve", "Serve models over HTTP (OpenAI and Ollama APIs)");
  auto f = std::make_shared<ServeFlags>();
  cmd->add_option("-m,--model", f->models,
                  "Model folder (repeatable; default: the bundled default model)");
  cmd->add_option("--host", f->host,
                  "Address to listen on (setting server_host, default 127.0.0.1)");
  cmd->add_option("-p,--port", f->port,
                  "TCP port (setting server_port, default 11435; 0 = any free port)");
  cmd->add_option(
      "--kv-budget", f->kv_budget,
      "KV cache bytes per model, e.g. 512MiB (setting kv_budget; default: a share of free memory)");
  cmd->add_option("--max-batch-tokens", f->max_batch_tokens,
                  "Tokens per forward step (setting max_batch_tokens)");
  cmd->add_option("--max-queue", f->max_queue,
                  "Waiting requests per model before 503 (setting max_queue)");
  cmd->add_option("--max-running", f->max_running,
                  "Concurrent sequences per model; 0 = what the KV cache holds");
  cmd->add_option("--quantize", f->quantize,
                  "Quantize weights at load: none, q8, q4 (setting quantize; cached)");
  return [=]() { return cmd->parsed() ? ServeMain(g, *f) : -1; };
}

}  // namespace tessera::cli
