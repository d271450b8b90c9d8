// What every `engine` subcommand shares: global flags, settings resolution, logging set-up, and
// opening backends and devices.
#ifndef TESSERA_TOOLS_ENGINE_CLI_COMMON_H_
#define TESSERA_TOOLS_ENGINE_CLI_COMMON_H_

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tessera/core/device.h"
#include "tessera/core/plugin_loader.h"
#include "tessera/core/settings.h"

namespace tessera::cli {

// Flags accepted before or after any subcommand.
struct GlobalFlags {
  std::string backend;
  std::vector<std::string> backend_paths;
  std::vector<std::string> backend_opts;  // id.key=value
  std::string config;
  std::vector<std::string> sets;  // name=value
  std::string log_level, log_format;
  int threads = -1;
};

void AddGlobalFlags(CLI::App& app, GlobalFlags* flags);

// Resolves settings (defaults < config file < environment < flags) and starts logging.
StatusOr<Settings> ResolveSettings(const GlobalFlags& flags);

// Loads plugins as the settings say.
std::unique_ptr<PluginRegistry> LoadPlugins(const Settings& settings, const GlobalFlags& flags);

// Opens devices in priority order: the requested backend's devices (error if it is missing or
// has none) or, with none requested, those of the best accelerator plugin that has a device
// (cuda, level-zero, vulkan, opencl, then others); the CPU last as the fallback for ops the
// first cannot run. Other accelerator plugins stay closed (`--backends` limits what loads).
struct OpenedDevices {
  std::vector<std::unique_ptr<Device>> owned;
  std::vector<Device*> ordered;
};
StatusOr<OpenedDevices> OpenDevices(const PluginRegistry& registry, const std::string& backend);

// The bundled default model: <prefix>/share/tessera/models/default next to the executable, or
// the source tree's models/default in a build tree; "" when neither exists.
std::string DefaultModelDir();

// Turns a MODEL argument into a folder (docs/models.md): a folder as is; an alias or
// ORG/NAME[@REV] to its snapshot in the Hugging Face cache, pulling it first when missing and
// `pull_if_missing` (asking "pull ORG/NAME (N GB)? [Y/n]" only on a terminal). In cmd_models.cc.
StatusOr<std::string> ResolveModelDir(const std::string& name, bool pull_if_missing);

// Prints "error: <message>" to stderr and returns the exit code for `status`.
int Fail(const Status& status);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_ENGINE_CLI_COMMON_H_
