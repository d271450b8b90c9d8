#include "tessera/core/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

namespace tessera {
namespace {

// One JSON object a line; the message is escaped by nlohmann::json, never by hand.
class JsonStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    using namespace std::chrono;
    auto us = duration_cast<microseconds>(msg.time.time_since_epoch()).count();
    nlohmann::json j;
    j["ts"] = static_cast<double>(us) / 1e6;
    j["level"] = std::string(spdlog::level::to_string_view(msg.level).data(),
                             spdlog::level::to_string_view(msg.level).size());
    j["logger"] = std::string(msg.logger_name.data(), msg.logger_name.size());
    j["msg"] = std::string(msg.payload.data(), msg.payload.size());
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

}  // namespace

StatusOr<LogFormat> ParseLogFormat(std::string_view s) {
  if (s == "text") return LogFormat::kText;
  if (s == "json") return LogFormat::kJson;
  return InvalidArgument("log format must be 'text' or 'json', got '" + std::string(s) + "'");
}

StatusOr<spdlog::level::level_enum> ParseLogLevel(std::string_view s) {
  static const std::pair<const char*, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"off", spdlog::level::off}};
  for (const auto& [name, level] : kLevels)
    if (s == name) return level;
  return InvalidArgument("log level must be one of trace, debug, info, warn, error, off; got '" +
                         std::string(s) + "'");
}

void InitLogging(LogFormat format, spdlog::level::level_enum level) {
  std::shared_ptr<spdlog::logger> logger;
  if (format == LogFormat::kJson) {
    logger = std::make_shared<spdlog::logger>("tessera", std::make_shared<JsonStderrSink>());
  } else {
    logger = std::make_shared<spdlog::logger>(
        "tessera", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_pattern("%^[%H:%M:%S.%e %L]%$ %v");
  }
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

}  // namespace tessera
