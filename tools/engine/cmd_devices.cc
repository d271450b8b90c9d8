// `engine devices [-v] [--json]` and `engine config --list [--json]`.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "fmt/format.h"

namespace tessera::cli {
namespace {

const char* KindName(tsr_device_kind k) {
  switch (k) {
    case TSR_DEVICE_CPU: return "cpu";
    case TSR_DEVICE_GPU_DISCRETE: return "discrete-gpu";
    case TSR_DEVICE_GPU_INTEGRATED: return "integrated-gpu";
    case TSR_DEVICE_NPU: return "npu";
    default: return "other";
  }
}

std::string Caps(uint32_t c) {
  std::string s;
  const std::pair<uint32_t, const char*> kCaps[] = {{TSR_CAP_F16, "f16"},
                                                    {TSR_CAP_BF16, "bf16"},
                                                    {TSR_CAP_Q8, "q8"},
                                                    {TSR_CAP_Q4, "q4"},
                                                    {TSR_CAP_HOST_IMPORT, "host-import"},
                                                    {TSR_CAP_UNIFIED_MEMORY, "unified-memory"},
                                                    {TSR_CAP_STATIC_SHAPES, "static-shapes"},
                                                    {TSR_CAP_ASYNC, "async"},
                                                    {TSR_CAP_NO_F32, "no-f32"}};
  for (const auto& [bit, name] : kCaps)
    if (c & bit) s += (s.empty() ? "" : " ") + std::string(name);
  return s;
}

std::string GiB(uint64_t b) {
  return b ? fmt::format("{:.1f} GiB", b / 1073741824.0) : "?";
}

nlohmann::json DeviceJson(const Plugin& p, int32_t i) {
  tsr_device_props props{};
  props.struct_size = sizeof(props);
  nlohmann::json j;
  j["id"] = p.id() + ":" + std::to_string(i);
  if (p.api().device_props(p.ctx(), i, &props, nullptr) != TSR_OK) return j;
  j["name"] = props.name ? props.name : "";
  j["description"] = props.description ? props.description : "";
  j["kind"] = KindName(props.kind);
  j["memory_total"] = props.memory_total;
  j["memory_free"] = props.memory_free;
  j["compute_units"] = props.compute_units;
  j["capabilities"] = Caps(props.caps);
  j["exec_styles"] = (props.exec_styles & TSR_EXEC_COMPILE) ? "compile" : "kernel";
  return j;
}

// `-v`: the device's memory now, through device_memory_info (plugin ABI 1.1). It needs an open
// device, so only verbose listings pay for opening one; a plugin built against ABI 1.0 has no
// such entry and is reported as such.
void AddLiveMemory(Plugin* p, int32_t i, nlohmann::json* d) {
  const tsr_plugin_api& api = p->api();
  if (!api.device_memory_info) {
    (*d)["live_memory"] =
        api.abi_minor >= 1
            ? std::string("not reported (the plugin does not implement device_memory_info)")
            : fmt::format("not reported (plugin ABI {}.{} has no device_memory_info)",
                          api.abi_major, api.abi_minor);
    return;
  }
  auto dev = Device::Open(p, i);
  if (!dev.ok()) {
    (*d)["live_memory"] = "device did not open: " + dev.status().message();
    return;
  }
  auto mem = QueryDeviceMemory(*p, (*dev)->handle());
  if (!mem.ok()) {
    (*d)["live_memory"] = mem.status().message();
    return;
  }
  (*d)["live_memory_free"] = mem->free_bytes;
  (*d)["live_memory_total"] = mem->total_bytes;
  (*d)["live_memory"] = fmt::format("{} free of {}", GiB(mem->free_bytes), GiB(mem->total_bytes));
}

int RunDevices(GlobalFlags* flags, bool verbose, bool json) {
  auto settings = ResolveSettings(*flags);
  if (!settings.ok()) return Fail(settings.status());
  auto reg = LoadPlugins(*settings, *flags);
  nlohmann::json out;
  out["backends"] = nlohmann::json::array();
  for (const auto& p : reg->plugins()) {
    nlohmann::json b{
        {"id", p->id()}, {"name", p->api().name ? p->api().name : ""}, {"path", p->path()}};
    b["version"] = p->api().version ? p->api().version : "";
    b["abi"] = fmt::format("{}.{}", p->api().abi_major, p->api().abi_minor);
    b["devices"] = nlohmann::json::array();
    for (int32_t i = 0; i < p->device_count(); ++i) {
      nlohmann::json d = DeviceJson(*p, i);
      if (verbose) AddLiveMemory(p.get(), i, &d);
      b["devices"].push_back(d);
    }
    if (p->device_count() == 0) b["absence_reason"] = p->absence_reason();
    out["backends"].push_back(b);
  }
  out["candidates"] = nlohmann::json::array();
  for (const auto& c : reg->candidates())
    out["candidates"].push_back({{"path", c.path},
                                 {"source", c.source},
                                 {"id", c.id},
                                 {"loaded", c.loaded},
                                 {"probe_score", c.probe_score},
                                 {"reason", c.reason}});
  out["searched"] = reg->searched();
  if (json) {
    std::cout << out.dump(2) << "\n";
  } else {
    for (const auto& b : out["backends"]) {
      std::cout << fmt::format("{} ({}) {}\n", b["id"].get<std::string>(),
                               b["name"].get<std::string>(), b["path"].get<std::string>());
      for (const auto& d : b["devices"]) {
        std::cout << fmt::format(
            "  {}  {}  [{}, {} total, {} free, {} units]\n      {}; caps: {}\n",
            d["id"].get<std::string>(), d.value("name", ""), d.value("kind", ""),
            GiB(d.value("memory_total", 0ull)), GiB(d.value("memory_free", 0ull)),
            d.value("compute_units", 0), d.value("description", ""), d.value("capabilities", ""));
        if (d.contains("live_memory"))
          std::cout << "      live memory: " << d["live_memory"].get<std::string>() << "\n";
      }
      if (verbose) std::cout << "  plugin ABI " << b["abi"].get<std::string>() << "\n";
      if (b.contains("absence_reason"))
        std::cout << "  no devices: " << b["absence_reason"].get<std::string>() << "\n";
    }
    if (verbose) {
      std::cout << "\nSearched, in order:\n";
      for (const auto& s : reg->searched()) std::cout << "  " << s << "\n";
      std::cout << "Candidates:\n";
      for (const auto& c : reg->candidates())
        std::cout << fmt::format("  {} {} [{}]: {}\n", c.loaded ? "+" : "-", c.path, c.source,
                                 c.reason);
    }
  }
  if (reg->plugins().empty()) return Fail(reg->ExplainMissing(""));
  const std::string& wanted = settings->GetString("backend");
  if (!wanted.empty() && !reg->Find(wanted)) return Fail(reg->ExplainMissing(wanted));
  return 0;
}

}  // namespace

Handler AddDevicesCommand(CLI::App& app, GlobalFlags* flags) {
  auto* cmd = app.add_subcommand("devices", "List backend plugins and their devices");
  auto verbose = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("-v,--verbose", *verbose,
                "Also list every plugin candidate and why it was or was not loaded");
  cmd->add_flag("--json", *json, "Machine-readable output");
  return [=]() { return cmd->parsed() ? RunDevices(flags, *verbose, *json) : -1; };
}

Handler AddConfigCommand(CLI::App& app, GlobalFlags* flags) {
  auto* cmd =
      app.add_subcommand("config", "Show every runtime setting: value, default, range, source");
  auto list = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--list", *list, "List all settings (the default action)");
  cmd->add_flag("--json", *json, "Machine-readable output");
  return [=]() {
    if (!cmd->parsed()) return -1;
    auto settings = ResolveSettings(*flags);
    if (!settings.ok()) return Fail(settings.status());
    if (*json)
      std::cout << settings->ToJson().dump(2) << "\n";
    else
      std::cout << settings->ToText();
    return 0;
  };
}

}  // namespace tessera::cli
