#include "cli_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>

#include "tessera/core/log.h"

namespace tessera::cli {

void AddGlobalFlags(CLI::App& app, GlobalFlags* f) {
  app.add_option("--backend", f->backend, "Backend plugin to run on (cpu, cuda, vulkan, ...)");
  app.add_option("--backend-path", f->backend_paths,
                 "Plugin file or folder searched first (repeatable)");
  app.add_option("--backend-opt", f->backend_opts, "Plugin option ID.KEY=VALUE (repeatable)");
  app.add_option("--config", f->config, "Settings file (JSON object of name: value)");
  app.add_option("--set", f->sets,
                 "Set a setting NAME=VALUE (repeatable; see `engine config --list`)");
  app.add_option("--log-level", f->log_level, "trace, debug, info, warn, error or off");
  app.add_option("--log-format", f->log_format, "text or json");
  app.add_option("-t,--threads", f->threads, "CPU threads (0 = all)");
}

StatusOr<Settings> ResolveSettings(const GlobalFlags& f) {
  Settings s;
  auto env = [](const char* n) -> const char* { return std::getenv(n); };
  std::string path = Settings::DefaultConfigPath(f.config, env);
  if (!path.empty()) TSR_RETURN_IF_ERROR(s.LoadFile(path));
  TSR_RETURN_IF_ERROR(s.LoadEnvironment(env));
  auto cmd = [&](const char* name, const std::string& v) -> Status {
    return v.empty() ? OkStatus() : s.Set(name, v, SettingSource::kCommandLine);
  };
  for (const auto& kv : f.sets) {
    auto eq = kv.find('=');
    if (eq == std::string::npos)
      return InvalidArgument("--set expects NAME=VALUE, got '" + kv + "'");
    TSR_RETURN_IF_ERROR(s.Set(kv.substr(0, eq), kv.substr(eq + 1), SettingSource::kCommandLine));
  }
  TSR_RETURN_IF_ERROR(cmd("backend", f.backend));
  std::string paths;
  for (const auto& p : f.backend_paths) paths += (paths.empty() ? "" : ":") + p;
  TSR_RETURN_IF_ERROR(cmd("backend_path", paths));
  TSR_RETURN_IF_ERROR(cmd("log_level", f.log_level));
  TSR_RETURN_IF_ERROR(cmd("log_format", f.log_format));
  if (f.threads >= 0) TSR_RETURN_IF_ERROR(cmd("threads", std::to_string(f.threads)));
  TSR_ASSIGN_OR_RETURN(auto format, ParseLogFormat(s.GetString("log_format")));
  TSR_ASSIGN_OR_RETURN(auto level, ParseLogLevel(s.GetString("log_level")));
  InitLogging(format, level);
  return s;
}

static std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::unique_ptr<PluginRegistry> LoadPlugins(const Settings& settings, const GlobalFlags& flags) {
  LoaderOptions o = LoaderOptions::FromEnvironment();
  // TESSERA_BACKEND_PATH is already o.env_paths, searched after the explicit entries.
  if (settings.SourceOf("backend_path") != SettingSource::kEnvironment)
    o.explicit_paths = Split(settings.GetString("backend_path"), ':');
  o.only_ids = Split(settings.GetString("backends"), ',');
  if (settings.GetInt("threads") > 0)
    o.plugin_options["cpu"].push_back({"threads", settings.GetString("threads")});
  for (const auto& opt : flags.backend_opts) {
    auto dot = opt.find('.'), eq = opt.find('=');
    if (dot == std::string::npos || eq == std::string::npos || dot > eq) {
      spdlog::warn("ignoring --backend-opt '{}': expected ID.KEY=VALUE", opt);
      continue;
    }
    o.plugin_options[opt.substr(0, dot)].push_back(
        {opt.substr(dot + 1, eq - dot - 1), opt.substr(eq + 1)});
  }
  return PluginRegistry::Discover(o);
}

StatusOr<OpenedDevices> OpenDevices(const PluginRegistry& registry, const std::string& backend) {
  OpenedDevices out;
  if (registry.plugins().empty()) return registry.ExplainMissing("");
  std::vector<Plugin*> order;
  if (!backend.empty()) {
    Plugin* p = registry.Find(backend);
    if (!p) return registry.ExplainMissing(backend);
    if (p->device_count() == 0)
      return NotFound("backend '" + backend + "' has no usable device: " + p->absence_reason());
    order.push_back(p);
  }
  if (order.empty()) {
    // No backend named: the first accelerator plugin with a device, native APIs before portable
    // ones. Only one: CUDA, Vulkan and OpenCL can all reach the same GPU, and opening it through
    // each would cost a context (and memory) per API for no gain.
    static const char* const kPreference[] = {"cuda", "level-zero", "vulkan", "opencl"};
    auto rank = [](const std::string& id) {
      for (size_t i = 0; i < std::size(kPreference); ++i)
        if (id == kPreference[i]) return i;
      return std::size(kPreference);  // out-of-tree plugins (NPUs...) after the known ones
    };
    Plugin* best = nullptr;
    for (const auto& p : registry.plugins()) {
      if (p->id() == "cpu" || p->device_count() == 0) continue;
      if (!best || rank(p->id()) < rank(best->id())) best = p.get();
    }
    if (best) order.push_back(best);
  }
  if (Plugin* cpu = registry.Find("cpu");
      cpu && std::find(order.begin(), order.end(), cpu) == order.end())
    order.push_back(cpu);
  for (Plugin* p : order) {
    for (int32_t i = 0; i < p->device_count(); ++i) {
      auto d = Device::Open(p, i);
      if (!d.ok()) {
        spdlog::warn("cannot open {}:{}: {}", p->id(), i, d.status().message());
        continue;
      }
      out.ordered.push_back(d->get());
      out.owned.push_back(std::move(d).value());
    }
  }
  if (out.ordered.empty())
    return NotFound("no backend has a usable device (run `engine devices -v`)");
  return out;
}

std::string DefaultModelDir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "share/tessera/models/default");
#ifdef TESSERA_SOURCE_DIR
  candidates.push_back(fs::path(TESSERA_SOURCE_DIR) / "models/default");
#endif
  for (const auto& c : candidates)
    if (fs::is_directory(c, ec)) return c.string();
  return "";
}

int Fail(const Status& status) {
  std::fprintf(stderr, "error: %s\n", status.message().c_str());
  return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace tessera::cli
