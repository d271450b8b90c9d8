// Logging: spdlog to stderr, human-readable by default or JSON lines (`--log-format json`) for
// tools and tuning agents. Only generated text goes to stdout; every log line goes to stderr.
#ifndef TESSERA_CORE_LOG_H_
#define TESSERA_CORE_LOG_H_

#include <spdlog/spdlog.h>

#include <string_view>

#include "tessera/core/status.h"

namespace tessera {

enum class LogFormat { kText, kJson };

// Parses "text" / "json".
StatusOr<LogFormat> ParseLogFormat(std::string_view s);
// Parses trace/debug/info/warn/error/off.
StatusOr<spdlog::level::level_enum> ParseLogLevel(std::string_view s);

// Replaces the default logger with a stderr logger in `format`. Call once at start-up, before
// other threads log. JSON lines carry "ts", "level", "logger", "msg" (and "plugin" for lines a
// plugin logged through the host callback).
void InitLogging(LogFormat format, spdlog::level::level_enum level);

}  // namespace tessera

#endif  // TESSERA_CORE_LOG_H_
