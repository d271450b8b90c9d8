#include "components.h"

#include <nlohmann/json.hpp>

#include "unicode.h"

namespace tessera::text::internal {

void ReverseVocab::Build(const Vocab& vocab) {
  int64_t limit = 0;
  for (const auto& [token, id] : vocab) limit = std::max<int64_t>(limit, int64_t{id} + 1);
  limit_ = static_cast<int32_t>(std::min<int64_t>(limit, INT32_MAX));
  tokens_.clear();
  present_.clear();
  sparse_.clear();
  // Dense unless the table would be mostly holes (more than 2 slots an entry past 64Ki).
  if (limit > 2 * static_cast<int64_t>(vocab.size()) + 65536) {
    for (const auto& [token, id] : vocab) {
      if (id >= 0) sparse_[id] = token;
    }
    return;
  }
  tokens_.assign(static_cast<size_t>(limit), std::string());
  present_.assign(static_cast<size_t>(limit), false);
  for (const auto& [token, id] : vocab) {
    if (id < 0) continue;
    tokens_[id] = token;
    present_[id] = true;
  }
}

StatusOr<std::string> JsonString(const nlohmann::json& j, std::string_view key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return InvalidArgument("expected string field '" + std::string(key) + "' in " + j.dump());
  }
  return it->get<std::string>();
}

StatusOr<bool> JsonBool(const nlohmann::json& j, std::string_view key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return InvalidArgument("expected bool field '" + std::string(key) + "'");
  return it->get<bool>();
}

StatusOr<int64_t> JsonInt(const nlohmann::json& j, std::string_view key, int64_t fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) {
    return InvalidArgument("expected integer field '" + std::string(key) + "'");
  }
  return it->get<int64_t>();
}

StatusOr<char32_t> JsonChar(const nlohmann::json& j, std::string_view key) {
  TSR_ASSIGN_OR_RETURN(std::string s, JsonString(j, key));
  if (s.empty() || !IsValidUtf8(s) || Utf8Len(static_cast<unsigned char>(s[0])) != s.size()) {
    return InvalidArgument("field '" + std::string(key) + "' must be a single character");
  }
  return DecodeAt(s, 0);
}

std::string JsonType(const nlohmann::json& j) {
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace tessera::text::internal
