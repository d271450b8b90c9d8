// Runtime settings: every knob declared once (settings.cc, kSettingDefs) with its type, default,
// range and help, so people (`engine config --list`) and tuning agents (`--json`) see the same
// table.
//
// Precedence, lowest to highest: built-in default < config file < environment (TESSERA_<NAME>)
// < command line (dedicated flags or `--set name=value`). The config file is a JSON object
// {"name": value, ...} read from --config, else $TESSERA_CONFIG, else
// $XDG_CONFIG_HOME/tessera/config.json (default ~/.config/tessera/config.json) when it exists.
#ifndef TESSERA_CORE_SETTINGS_H_
#define TESSERA_CORE_SETTINGS_H_

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/core/status.h"

namespace tessera {

enum class SettingType { kInt, kFloat, kBool, kString, kEnum, kBytes };
enum class SettingSource { kDefault, kConfigFile, kEnvironment, kCommandLine };

const char* SettingSourceName(SettingSource s);

struct SettingDef {
  const char* name;  // snake_case; env var is TESSERA_<NAME upper-cased>
  SettingType type;
  const char* default_value;         // as text, parsed like any other value
  double min = 0, max = 0;           // numeric range (inclusive) when min < max
  std::vector<const char*> choices;  // kEnum
  const char* help;
};

// The whole table, in declaration order.
const std::vector<SettingDef>& SettingDefs();

// A resolved set of values. Not thread-safe for writes; reads after start-up are safe.
class Settings {
 public:
  Settings();  // every setting at its default

  // Parses and range-checks `value`; unknown names and bad values are InvalidArgument naming
  // the setting and the accepted range.
  Status Set(std::string_view name, std::string_view value, SettingSource source);
  Status LoadFile(const std::string& path);
  // Reads TESSERA_<NAME> for every setting from `getenv`-like lookups (injected for tests).
  Status LoadEnvironment(const std::function<const char*(const char*)>& getenv_fn);
  // The config file path by the documented rule ("" if none applies), given --config's value.
  static std::string DefaultConfigPath(const std::string& flag_value,
                                       const std::function<const char*(const char*)>& getenv_fn);

  int64_t GetInt(std::string_view name) const;  // also kBytes
  double GetFloat(std::string_view name) const;
  bool GetBool(std::string_view name) const;
  const std::string& GetString(std::string_view name) const;  // any type, as text
  SettingSource SourceOf(std::string_view name) const;

  // [{"name", "type", "value", "default", "source", "min", "max", "choices", "help"}...]
  nlohmann::json ToJson() const;
  // A human-readable table.
  std::string ToText() const;

 private:
  struct Value {
    std::string text;
    double number = 0;
    SettingSource source = SettingSource::kDefault;
  };
  const Value& Get(std::string_view name) const;
  std::map<std::string, Value, std::less<>> values_;
};

// "4GiB", "512MB", "1000000" -> bytes (powers of 1024 for Ki/Mi/Gi/Ti, of 1000 for K/M/G/T).
StatusOr<int64_t> ParseBytes(std::string_view text);

}  // namespace tessera

#endif  // TESSERA_CORE_SETTINGS_H_
