#include "tessera/core/plugin_loader.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace tessera {

namespace fs = std::filesystem;

class LoadedLibrary {
 public:
  boost::dll::shared_library lib;
};

struct PluginLogContext {
  std::string id;
};

namespace {

void HostLog(void* user, tsr_log_level level, const char* message) {
  const auto* ctx = static_cast<const PluginLogContext*>(user);
  spdlog::level::level_enum l = spdlog::level::info;
  switch (level) {
    case TSR_LOG_TRACE: l = spdlog::level::trace; break;
    case TSR_LOG_DEBUG: l = spdlog::level::debug; break;
    case TSR_LOG_INFO: l = spdlog::level::info; break;
    case TSR_LOG_WARN: l = spdlog::level::warn; break;
    case TSR_LOG_ERROR: l = spdlog::level::err; break;
  }
  spdlog::log(l, "[{}] {}", ctx ? ctx->id : "?", message ? message : "");
}

std::vector<std::string> SplitList(const char* value, char sep) {
  std::vector<std::string> out;
  if (!value) return out;
  std::string cur;
  for (const char* p = value;; ++p) {
    if (*p == sep || *p == '\0') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      if (*p == '\0') break;
    } else {
      cur.push_back(*p);
    }
  }
  return out;
}

std::string CoreLibraryDir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&SplitList), &info) == 0 || !info.dli_fname) return "";
  std::error_code ec;
  fs::path p = fs::canonical(info.dli_fname, ec);
  return ec ? "" : p.parent_path().string();
}

bool IsPluginFileName(const fs::path& p) {
  std::string name = p.filename().string();
  return name.rfind("libtessera_backend_", 0) == 0 && p.extension() == ".so";
}

// Expands one search entry (file or folder) into candidate files, sorted for determinism.
void Expand(const std::string& entry, const std::string& source, std::vector<PluginCandidate>* out,
            std::vector<std::string>* searched) {
  searched->push_back(entry + " (" + source + ")");
  std::error_code ec;
  fs::path p(entry);
  if (fs::is_directory(p, ec)) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(p, ec))
      if (IsPluginFileName(e.path())) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (auto& f : files) out->push_back({f, source});
  } else if (fs::exists(p, ec)) {
    out->push_back({entry, source});
  } else {
    out->push_back({entry, source, "", 0, false, "no such file or directory"});
  }
}

std::string AbiString(unsigned major, unsigned minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

// A function, not an inline `minor >= TSR_ABI_MINOR_FLOOR`: with a floor of 0, GCC warns that a
// uint16_t is always >= 0.
bool AtLeast(unsigned value, unsigned floor) {
  return value >= floor;
}

// The ABI rule (plugin_api.h, "Versioning"): our major, any minor from the floor up, older or
// newer than ours. Fills *reason and returns false for anything else.
bool AbiAccepted(const tsr_plugin_api& table, std::string* reason) {
  if (table.abi_major == TSR_ABI_MAJOR && AtLeast(table.abi_minor, TSR_ABI_MINOR_FLOOR))
    return true;
  *reason = "built for plugin ABI " + AbiString(table.abi_major, table.abi_minor) +
            ", but this engine (ABI " + AbiString(TSR_ABI_MAJOR, TSR_ABI_MINOR) +
            ") loads plugins of ABI " + AbiString(TSR_ABI_MAJOR, TSR_ABI_MINOR_FLOOR) +
            " or any later " + std::to_string(TSR_ABI_MAJOR) + ".x only";
  if (table.abi_major < TSR_ABI_MAJOR)
    *reason +=
        ": rebuild it against a Tessera plugin SDK of ABI " + std::to_string(TSR_ABI_MAJOR) + ".x";
  else if (table.abi_major > TSR_ABI_MAJOR)
    *reason += ": it needs a newer engine";
  return false;
}

}  // namespace

LoaderOptions LoaderOptions::FromEnvironment() {
  LoaderOptions o;
  o.env_paths = SplitList(std::getenv("TESSERA_BACKEND_PATH"), ':');
  o.only_ids = SplitList(std::getenv("TESSERA_BACKENDS"), ',');
  std::string core_dir = CoreLibraryDir();
  if (!core_dir.empty()) o.bundled_dir = core_dir + "/tessera/backends";
#ifdef TESSERA_SYSTEM_BACKEND_DIR
  o.system_dir = TESSERA_SYSTEM_BACKEND_DIR;
#endif
  return o;
}

Plugin::~Plugin() {
  if (ctx_ && api_ && api_->destroy_context) api_->destroy_context(ctx_);
  delete api_;
}

int32_t Plugin::device_count() const {
  int32_t n = 0;
  if (!api_->device_count || api_->device_count(ctx_, &n, nullptr) != TSR_OK) return 0;
  return n;
}

std::string Plugin::absence_reason() const {
  if (!api_->absence_reason) return "";
  const char* r = api_->absence_reason(ctx_);
  return r ? r : "";
}

StatusOr<DeviceMemoryInfo> QueryDeviceMemory(const Plugin& plugin, tsr_device* dev) {
  const tsr_plugin_api& api = plugin.api();
  if (!api.device_memory_info)
    return Unimplemented(plugin.id() + ": no live memory figure: the plugin (ABI " +
                         AbiString(api.abi_major, api.abi_minor) +
                         ") has no device_memory_info (ABI 1.1)");
  DeviceMemoryInfo info;
  tsr_error err{};
  err.struct_size = sizeof(err);
  tsr_status st = api.device_memory_info(dev, &info.free_bytes, &info.total_bytes, &err);
  if (st != TSR_OK) return FromPluginError(plugin.id(), st, err);
  return info;
}

Status FromPluginError(std::string_view plugin_id, tsr_status code, const tsr_error& err) {
  std::string msg =
      std::string(plugin_id) + ": " +
      (err.message[0] ? std::string(err.message) : "error code " + std::to_string(code));
  switch (code) {
    case TSR_OK: return OkStatus();
    case TSR_ERR_UNIMPLEMENTED: return Unimplemented(msg);
    case TSR_ERR_UNSUPPORTED: return Unsupported(msg);
    case TSR_ERR_INVALID_ARGUMENT: return InvalidArgument(msg);
    case TSR_ERR_OUT_OF_MEMORY: return ResourceExhausted(msg);
    case TSR_ERR_NOT_FOUND: return NotFound(msg);
    case TSR_ERR_DEVICE: return DeviceError(msg);
    default: return Internal(msg);
  }
}

namespace {

// Loads and initializes one candidate; on failure fills cand->reason and returns false.
bool LoadOne(PluginCandidate* cand, std::unique_ptr<LoadedLibrary>* lib_out,
             std::unique_ptr<PluginLogContext>* log_out, const tsr_plugin_api** api_out) {
  auto lib = std::make_unique<LoadedLibrary>();
  boost::dll::fs::error_code ec;
  ::dlerror();
  lib->lib.load(cand->path, boost::dll::load_mode::rtld_local | boost::dll::load_mode::rtld_now,
                ec);
  if (ec || !lib->lib.is_loaded()) {
    const char* why = ::dlerror();
    cand->reason = std::string("not a loadable shared library: ") + (why ? why : ec.message());
    return false;
  }
  if (!lib->lib.has(TSR_PLUGIN_INIT_SYMBOL)) {
    cand->reason = "no tsr_plugin_init entry point: not a Tessera backend plugin";
    return false;
  }
  if (lib->lib.has(TSR_PLUGIN_PROBE_SYMBOL)) {
    auto probe = lib->lib.get<int32_t()>(TSR_PLUGIN_PROBE_SYMBOL);
    cand->probe_score = probe();
    if (cand->probe_score < 0) {
      cand->reason = "its probe says this build cannot run on this machine (score " +
                     std::to_string(cand->probe_score) + ")";
      return false;
    }
  }
  auto log_ctx = std::make_unique<PluginLogContext>();
  log_ctx->id = fs::path(cand->path).stem().string();
  tsr_host_api host{};
  host.struct_size = sizeof(host);
  host.abi_major = TSR_ABI_MAJOR;
  host.abi_minor = TSR_ABI_MINOR;
  host.user = log_ctx.get();
  host.log = &HostLog;
  tsr_error err{};
  err.struct_size = sizeof(err);
  auto init =
      lib->lib.get<const tsr_plugin_api*(const tsr_host_api*, tsr_error*)>(TSR_PLUGIN_INIT_SYMBOL);
  const tsr_plugin_api* table = init(&host, &err);
  if (!table) {
    cand->reason = std::string("tsr_plugin_init refused: ") +
                   (err.message[0] ? err.message : "no reason given");
    return false;
  }
  if (table->struct_size < offsetof(tsr_plugin_api, create_context)) {
    cand->reason =
        "its function table is truncated (struct_size " + std::to_string(table->struct_size) + ")";
    return false;
  }
  if (!AbiAccepted(*table, &cand->reason)) return false;
  // A zeroed host-sized copy: entries past an older plugin's struct_size read as NULL, a newer
  // plugin's extra entries are left behind, and struct_size then describes the copy.
  auto* copy = new tsr_plugin_api{};
  const size_t known = std::min<size_t>(table->struct_size, sizeof(tsr_plugin_api));
  std::memcpy(copy, table, known);
  copy->struct_size = static_cast<uint32_t>(known);
  if (!copy->id || !copy->id[0] || !copy->create_context) {
    delete copy;
    cand->reason = "its function table has no id or no create_context";
    return false;
  }
  cand->id = copy->id;
  log_ctx->id = copy->id;
  *api_out = copy;
  *lib_out = std::move(lib);
  *log_out = std::move(log_ctx);
  return true;
}

}  // namespace

std::unique_ptr<PluginRegistry> PluginRegistry::Discover(const LoaderOptions& options) {
  auto reg = std::make_unique<PluginRegistry>();
  std::vector<PluginCandidate> cands;
  for (const auto& p : options.explicit_paths) Expand(p, "--backend-path", &cands, &reg->searched_);
  for (const auto& p : options.env_paths)
    Expand(p, "TESSERA_BACKEND_PATH", &cands, &reg->searched_);
  if (!options.bundled_dir.empty()) Expand(options.bundled_dir, "bundled", &cands, &reg->searched_);
  if (!options.system_dir.empty() && options.system_dir != options.bundled_dir)
    Expand(options.system_dir, "system", &cands, &reg->searched_);

  std::vector<std::string> seen_paths;
  for (auto& cand : cands) {
    if (!cand.reason.empty()) continue;  // did not exist
    std::error_code ec;
    std::string canon = fs::weakly_canonical(cand.path, ec).string();
    if (std::find(seen_paths.begin(), seen_paths.end(), canon) != seen_paths.end()) {
      cand.reason = "same file as an earlier candidate";
      continue;
    }
    seen_paths.push_back(canon);

    auto plugin = std::unique_ptr<Plugin>(new Plugin());
    if (!LoadOne(&cand, &plugin->lib_, &plugin->log_ctx_, &plugin->api_)) continue;
    plugin->id_ = cand.id;
    plugin->path_ = cand.path;
    if (!options.only_ids.empty() && std::find(options.only_ids.begin(), options.only_ids.end(),
                                               cand.id) == options.only_ids.end()) {
      cand.reason = "filtered out by TESSERA_BACKENDS";
      continue;
    }
    auto prev = std::find_if(reg->plugins_.begin(), reg->plugins_.end(),
                             [&](const auto& p) { return p->id() == cand.id; });
    if (prev != reg->plugins_.end()) {
      auto prev_cand =
          std::find_if(reg->candidates_.begin(), reg->candidates_.end(),
                       [&](const PluginCandidate& c) { return c.loaded && c.id == cand.id; });
      if (cand.probe_score <= prev_cand->probe_score) {
        cand.reason = "duplicate id '" + cand.id + "': " + prev_cand->path +
                      " was found first with probe score " +
                      std::to_string(prev_cand->probe_score) +
                      " >= " + std::to_string(cand.probe_score);
        continue;
      }
      prev_cand->loaded = false;
      prev_cand->reason = "duplicate id '" + cand.id + "': superseded by " + cand.path +
                          " (probe score " + std::to_string(cand.probe_score) + " > " +
                          std::to_string(prev_cand->probe_score) + ")";
      reg->plugins_.erase(prev);
    }
    cand.loaded = true;
    cand.reason = "loaded";
    reg->candidates_.push_back(cand);
    reg->plugins_.push_back(std::move(plugin));
    continue;
  }
  // Rejected candidates keep discovery order next to the loaded ones.
  for (auto& cand : cands)
    if (!cand.loaded) reg->candidates_.push_back(cand);

  // Contexts only for the winners.
  for (auto it = reg->plugins_.begin(); it != reg->plugins_.end();) {
    Plugin& p = **it;
    std::vector<tsr_option> opts;
    auto found = options.plugin_options.find(p.id());
    if (found != options.plugin_options.end())
      for (const auto& [k, v] : found->second)
        opts.push_back({sizeof(tsr_option), k.c_str(), v.c_str()});
    tsr_error err{};
    err.struct_size = sizeof(err);
    tsr_status st = p.api_->create_context(opts.data(), opts.size(), &p.ctx_, &err);
    if (st != TSR_OK) {
      for (auto& c : reg->candidates_)
        if (c.loaded && c.id == p.id()) {
          c.loaded = false;
          c.reason = FromPluginError(p.id(), st, err).message();
        }
      it = reg->plugins_.erase(it);
    } else {
      ++it;
    }
  }
  return reg;
}

PluginRegistry::~PluginRegistry() = default;

Plugin* PluginRegistry::Find(std::string_view id) const {
  for (const auto& p : plugins_)
    if (p->id() == id) return p.get();
  return nullptr;
}

Status PluginRegistry::ExplainMissing(std::string_view id) const {
  std::string msg = id.empty() ? "no backend plugin could be loaded"
                               : "backend '" + std::string(id) + "' is not available";
  msg += ". Searched:";
  for (const auto& s : searched_) msg += "\n  " + s;
  if (searched_.empty()) msg += " (nowhere: no search path was configured)";
  for (const auto& c : candidates_)
    if (!c.loaded) msg += "\n  rejected " + c.path + ": " + c.reason;
  if (!id.empty() && !plugins_.empty()) {
    msg += "\nAvailable backends:";
    for (const auto& p : plugins_) msg += " " + p->id();
  }
  return NotFound(msg);
}

}  // namespace tessera
