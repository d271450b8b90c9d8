// Backend plugin discovery and loading (Boost.DLL).
//
// Discovery order (ARCHITECTURE.md): explicit --backend-path entries, then TESSERA_BACKEND_PATH
// (':'-separated files and folders), then <dir of libtessera_core.so>/tessera/backends, then the
// system install dir. Never the current directory. In a folder, files named
// libtessera_backend_*.so are candidates; an explicitly named file is a candidate whatever its
// name. Every candidate is recorded with why it was or was not loaded (`engine devices -v`).
// Plugins with the same id are deduplicated: the highest tsr_plugin_probe score wins (ties: the
// first found). TESSERA_BACKENDS=cpu,vulkan keeps only those ids.
#ifndef TESSERA_CORE_PLUGIN_LOADER_H_
#define TESSERA_CORE_PLUGIN_LOADER_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tessera/core/status.h"
#include "tessera/plugin_api.h"

namespace tessera {

struct LoaderOptions {
  std::vector<std::string> explicit_paths;  // --backend-path
  std::vector<std::string> env_paths;       // TESSERA_BACKEND_PATH
  std::vector<std::string> only_ids;        // TESSERA_BACKENDS (empty: all)
  std::string bundled_dir;                  // next to the core library; "" = none
  std::string system_dir;                   // the install prefix's backend dir; "" = none
  // Options handed to each plugin's create_context, by plugin id.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> plugin_options;

  // Defaults: bundled_dir and system_dir as built, env_paths and only_ids from the environment.
  // Reads the environment here (at start-up), never deep inside the loader.
  static LoaderOptions FromEnvironment();
};

struct PluginCandidate {
  std::string path;
  std::string source;  // "--backend-path", "TESSERA_BACKEND_PATH", "bundled", "system"
  std::string id;      // "" when it never got far enough to tell
  int32_t probe_score = 0;
  bool loaded = false;
  std::string reason;  // why rejected, or "loaded"
};

class LoadedLibrary;      // Boost.DLL handle, private
struct PluginLogContext;  // what the host log callback receives, private

// One loaded, initialized plugin and its context. Not copyable; owned by the registry.
// Thread-safe for concurrent reads of its fields; calls into api() follow the ABI's rules.
class Plugin {
 public:
  ~Plugin();
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  const std::string& id() const { return id_; }
  const std::string& path() const { return path_; }
  const tsr_plugin_api& api() const { return *api_; }
  tsr_plugin_ctx* ctx() const { return ctx_; }
  int32_t device_count() const;
  // The plugin's explanation when it has no devices ("" otherwise).
  std::string absence_reason() const;

 private:
  friend class PluginRegistry;
  Plugin() = default;
  std::unique_ptr<LoadedLibrary> lib_;
  std::unique_ptr<PluginLogContext> log_ctx_;
  const tsr_plugin_api* api_ = nullptr;
  tsr_plugin_ctx* ctx_ = nullptr;
  std::string id_, path_;
};

class PluginRegistry {
 public:
  // Never fails: a bad candidate is recorded and skipped, never a crash.
  static std::unique_ptr<PluginRegistry> Discover(const LoaderOptions& options);
  ~PluginRegistry();

  const std::vector<PluginCandidate>& candidates() const { return candidates_; }
  const std::vector<std::unique_ptr<Plugin>>& plugins() const { return plugins_; }
  // The folders and files searched, in order, with their source (for error messages).
  const std::vector<std::string>& searched() const { return searched_; }
  Plugin* Find(std::string_view id) const;

  // NotFound naming every place searched and each candidate's rejection when no plugin with
  // `id` loaded (or none at all when id is empty).
  Status ExplainMissing(std::string_view id) const;

 private:
  std::vector<PluginCandidate> candidates_;
  std::vector<std::unique_ptr<Plugin>> plugins_;
  std::vector<std::string> searched_;
};

// Converts a plugin's error to a Status ("<plugin id>: <message>").
Status FromPluginError(std::string_view plugin_id, tsr_status code, const tsr_error& err);

// Live memory of an open device (bytes; 0 = unknown).
struct DeviceMemoryInfo {
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
};

// Asks the plugin's device_memory_info (ABI 1.1). Unimplemented, naming the plugin's ABI, when
// the plugin has none (every 1.0 plugin): callers then fall back to the device_props snapshot.
StatusOr<DeviceMemoryInfo> QueryDeviceMemory(const Plugin& plugin, tsr_device* dev);

}  // namespace tessera

#endif  // TESSERA_CORE_PLUGIN_LOADER_H_
