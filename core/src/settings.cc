#include "tessera/core/settings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

namespace tessera {

// The one declaration of every runtime knob. Keep alphabetical within a group.
const std::vector<SettingDef>& SettingDefs() {
  static const std::vector<SettingDef> kDefs = {
      // Backends
      {"backend",
       SettingType::kString,
       "",
       0,
       0,
       {},
       "Preferred backend plugin id (cpu, cuda, vulkan, ...); empty = the best loaded device, "
       "CPU as fallback"},
      {"backend_path",
       SettingType::kString,
       "",
       0,
       0,
       {},
       "Extra plugin files or folders, ':'-separated, searched before everything else"},
      {"backends",
       SettingType::kString,
       "",
       0,
       0,
       {},
       "Only load these plugin ids (comma-separated); empty = all found"},
      {"compile_cache_dir",
       SettingType::kString,
       "",
       0,
       0,
       {},
       "Where compile-style backends (NPUs) cache compiled subgraphs; empty = "
       "$XDG_CACHE_HOME/tessera/compiled"},
      {"quantize",
       SettingType::kEnum,
       "none",
       0,
       0,
       {"none", "q8", "q4"},
       "Quantize the decoder's weight matrices at load (cached; docs/quantization.md); none = "
       "the checkpoint's own dtypes"},
      {"threads",
       SettingType::kInt,
       "0",
       0,
       1024,
       {},
       "CPU backend worker threads; 0 = one per hardware thread"},
      // Logging
      {"log_format",
       SettingType::kEnum,
       "text",
       0,
       0,
       {"text", "json"},
       "Log line format on stderr: text for people, json (one object a line) for tools"},
      {"log_level",
       SettingType::kEnum,
       "info",
       0,
       0,
       {"trace", "debug", "info", "warn", "error", "off"},
       "Least severe log level printed"},
      // Serving (engine serve; docs/server.md)
      {"kv_budget",
       SettingType::kBytes,
       "0",
       0,
       0,
       {},
       "KV cache bytes per served model; 0 = kv_budget_share of the device's free memory after "
       "weights, split between the models"},
      {"kv_budget_share",
       SettingType::kFloat,
       "0.5",
       0.01,
       0.95,
       {},
       "Share of free device memory (after weights) the KV caches may take when kv_budget is 0"},
      {"keep_alive",
       SettingType::kInt,
       "300",
       -1,
       1000000000,
       {},
       "Seconds an idle model loaded on request stays loaded; -1 = forever (models named with "
       "--model always stay)"},
      {"memory_budget",
       SettingType::kBytes,
       "0",
       0,
       0,
       {},
       "Bytes all loaded models (weights + KV cache) may take together; 0 = the device's free "
       "memory at start. The least recently used idle model is unloaded to make room"},
      {"max_batch_tokens",
       SettingType::kInt,
       "512",
       1,
       65536,
       {},
       "Most tokens one forward step runs (running decodes + prefill chunks)"},
      {"max_queue",
       SettingType::kInt,
       "256",
       0,
       1000000,
       {},
       "Requests per model waiting for admission before the server answers 503"},
      {"max_running",
       SettingType::kInt,
       "0",
       0,
       65536,
       {},
       "Sequences per model decoding at once; 0 = as many as the KV cache holds"},
      {"prefix_caching",
       SettingType::kBool,
       "true",
       0,
       0,
       {},
       "Share KV blocks of identical prompt prefixes between requests"},
      {"server_body_timeout_ms",
       SettingType::kInt,
       "30000",
       1,
       3600000,
       {},
       "Time a client has to send a request body once its headers arrived"},
      {"server_header_timeout_ms",
       SettingType::kInt,
       "10000",
       1,
       3600000,
       {},
       "Time a client has to send a request's headers (also the keep-alive idle time)"},
      {"server_host",
       SettingType::kString,
       "127.0.0.1",
       0,
       0,
       {},
       "Address engine serve listens on (0.0.0.0 for every interface)"},
      {"server_max_body",
       SettingType::kBytes,
       "8MiB",
       1,
       1e10,
       {},
       "Largest request body; larger ones get 413"},
      {"server_port",
       SettingType::kInt,
       "11435",
       0,
       65535,
       {},
       "TCP port engine serve listens on (0 = any free port, printed at start)"},
      {"server_threads",
       SettingType::kInt,
       "2",
       1,
       256,
       {},
       "HTTP I/O threads (parsing, tokenizing, streaming); the model runs on its own thread"},
      {"server_write_timeout_ms",
       SettingType::kInt,
       "60000",
       1,
       3600000,
       {},
       "Time one response write may take before the client is dropped"},
  };
  return kDefs;
}

const char* SettingSourceName(SettingSource s) {
  switch (s) {
    case SettingSource::kDefault: return "default";
    case SettingSource::kConfigFile: return "config-file";
    case SettingSource::kEnvironment: return "environment";
    case SettingSource::kCommandLine: return "command-line";
  }
  return "?";
}

namespace {

const SettingDef* FindDef(std::string_view name) {
  for (const auto& d : SettingDefs())
    if (name == d.name) return &d;
  return nullptr;
}

const char* TypeName(SettingType t) {
  switch (t) {
    case SettingType::kInt: return "int";
    case SettingType::kFloat: return "float";
    case SettingType::kBool: return "bool";
    case SettingType::kString: return "string";
    case SettingType::kEnum: return "enum";
    case SettingType::kBytes: return "bytes";
  }
  return "?";
}

std::string EnvName(const char* name) {
  std::string e = "TESSERA_";
  for (const char* p = name; *p; ++p)
    e.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(*p))));
  return e;
}

StatusOr<double> ParseNumber(const SettingDef& d, std::string_view v) {
  std::string s(v);
  if (d.type == SettingType::kBytes) {
    TSR_ASSIGN_OR_RETURN(int64_t b, ParseBytes(s));
    return static_cast<double>(b);
  }
  if (d.type == SettingType::kInt) {
    int64_t i = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
    if (ec != std::errc() || p != s.data() + s.size()) return InvalidArgument("not an integer");
    return static_cast<double>(i);
  }
  std::istringstream in(s);
  double x = 0;
  in >> x;
  if (in.fail() || !in.eof()) return InvalidArgument("not a number");
  return x;
}

}  // namespace

StatusOr<int64_t> ParseBytes(std::string_view text) {
  std::string s(text);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return InvalidArgument("'" + s + "' is not a size (examples: 512MiB, 4GiB, 1000000)");
  double num = std::stod(s.substr(0, i));
  std::string unit = s.substr(i);
  unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
  static const std::pair<const char*, double> kUnits[] = {{"", 1},
                                                          {"B", 1},
                                                          {"K", 1e3},
                                                          {"KB", 1e3},
                                                          {"M", 1e6},
                                                          {"MB", 1e6},
                                                          {"G", 1e9},
                                                          {"GB", 1e9},
                                                          {"T", 1e12},
                                                          {"TB", 1e12},
                                                          {"KiB", 1024.},
                                                          {"MiB", 1048576.},
                                                          {"GiB", 1073741824.},
                                                          {"TiB", 1099511627776.}};
  for (const auto& [u, mul] : kUnits)
    if (unit == u) return static_cast<int64_t>(num * mul);
  return InvalidArgument("'" + s + "': unknown size unit '" + unit +
                         "' (use B, KB, MB, GB, KiB, MiB, GiB)");
}

Settings::Settings() {
  for (const auto& d : SettingDefs()) {
    Status s = Set(d.name, d.default_value, SettingSource::kDefault);
    TSR_CHECK(s.ok());
  }
}

Status Settings::Set(std::string_view name, std::string_view value, SettingSource source) {
  const SettingDef* d = FindDef(name);
  if (!d)
    return InvalidArgument("unknown setting '" + std::string(name) +
                           "' (see `engine config --list`)");
  Value v;
  v.text = std::string(value);
  v.source = source;
  std::string where =
      std::string("setting ") + d->name + " (from " + SettingSourceName(source) + ")";
  switch (d->type) {
    case SettingType::kInt:
    case SettingType::kFloat:
    case SettingType::kBytes: {
      auto n = ParseNumber(*d, value);
      if (!n.ok()) return InvalidArgument(where + ": '" + v.text + "' is " + n.status().message());
      if (d->min < d->max && (*n < d->min || *n > d->max))
        return InvalidArgument(
            fmt::format("{}: {} is outside [{}, {}]", where, v.text, d->min, d->max));
      v.number = *n;
      break;
    }
    case SettingType::kBool:
      if (value == "1" || value == "true" || value == "on" || value == "yes")
        v.number = 1;
      else if (value == "0" || value == "false" || value == "off" || value == "no")
        v.number = 0;
      else
        return InvalidArgument(where + ": '" + v.text + "' is not a boolean (true/false)");
      break;
    case SettingType::kEnum: {
      bool ok = std::any_of(d->choices.begin(), d->choices.end(),
                            [&](const char* c) { return value == c; });
      if (!ok) {
        std::string list;
        for (const char* c : d->choices) list += std::string(list.empty() ? "" : ", ") + c;
        return InvalidArgument(where + ": '" + v.text + "' is not one of " + list);
      }
      break;
    }
    case SettingType::kString: break;
  }
  values_[d->name] = std::move(v);
  return OkStatus();
}

Status Settings::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("config file '" + path + "' cannot be read");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return InvalidArgument("config file '" + path + "' is not a JSON object");
  for (const auto& [k, v] : j.items()) {
    std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    TSR_RETURN_IF_ERROR(Set(k, text, SettingSource::kConfigFile).WithContext(path));
  }
  return OkStatus();
}

Status Settings::LoadEnvironment(const std::function<const char*(const char*)>& getenv_fn) {
  for (const auto& d : SettingDefs()) {
    std::string env = EnvName(d.name);
    if (const char* v = getenv_fn(env.c_str()))
      TSR_RETURN_IF_ERROR(Set(d.name, v, SettingSource::kEnvironment).WithContext(env));
  }
  return OkStatus();
}

std::string Settings::DefaultConfigPath(const std::string& flag_value,
                                        const std::function<const char*(const char*)>& getenv_fn) {
  if (!flag_value.empty()) return flag_value;
  if (const char* p = getenv_fn("TESSERA_CONFIG")) return p;
  std::string base;
  if (const char* x = getenv_fn("XDG_CONFIG_HOME"))
    base = x;
  else if (const char* h = getenv_fn("HOME"))
    base = std::string(h) + "/.config";
  if (base.empty()) return "";
  std::string path = base + "/tessera/config.json";
  return std::ifstream(path).good() ? path : "";
}

const Settings::Value& Settings::Get(std::string_view name) const {
  auto it = values_.find(name);
  TSR_CHECK(it != values_.end());  // a typo in a setting name is a bug, not user input
  return it->second;
}

int64_t Settings::GetInt(std::string_view name) const {
  return static_cast<int64_t>(Get(name).number);
}
double Settings::GetFloat(std::string_view name) const {
  return Get(name).number;
}
bool Settings::GetBool(std::string_view name) const {
  return Get(name).number != 0;
}
const std::string& Settings::GetString(std::string_view name) const {
  return Get(name).text;
}
SettingSource Settings::SourceOf(std::string_view name) const {
  return Get(name).source;
}

nlohmann::json Settings::ToJson() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : SettingDefs()) {
    const Value& v = Get(d.name);
    nlohmann::json e;
    e["name"] = d.name;
    e["type"] = TypeName(d.type);
    e["env"] = EnvName(d.name);
    if (d.type == SettingType::kInt || d.type == SettingType::kBytes)
      e["value"] = static_cast<int64_t>(v.number);
    else if (d.type == SettingType::kFloat)
      e["value"] = v.number;
    else if (d.type == SettingType::kBool)
      e["value"] = v.number != 0;
    else
      e["value"] = v.text;
    e["default"] = d.default_value;
    e["source"] = SettingSourceName(v.source);
    if (d.min < d.max) {
      e["min"] = d.min;
      e["max"] = d.max;
    }
    if (!d.choices.empty()) e["choices"] = d.choices;
    e["help"] = d.help;
    out.push_back(std::move(e));
  }
  return out;
}

std::string Settings::ToText() const {
  std::string out;
  for (const auto& d : SettingDefs()) {
    const Value& v = Get(d.name);
    std::string range;
    if (d.min < d.max) range = fmt::format(" [{}..{}]", d.min, d.max);
    if (!d.choices.empty()) {
      range = " {";
      for (size_t i = 0; i < d.choices.size(); ++i)
        range += (i ? "|" : "") + std::string(d.choices[i]);
      range += "}";
    }
    out += fmt::format("{:<18} = {:<12} ({}, {}{}; default '{}'; {})\n    {}\n", d.name,
                       v.text.empty() ? "''" : v.text, SettingSourceName(v.source),
                       TypeName(d.type), range, d.default_value, EnvName(d.name), d.help);
  }
  return out;
}

}  // namespace tessera
