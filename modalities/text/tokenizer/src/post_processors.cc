// Post-processors (single sequence only): tokenizers/src/processors/* semantics on ids.
#include <nlohmann/json.hpp>

#include "components.h"

namespace tessera::text::internal {
namespace {

// ByteLevel only trims offsets, which ids do not carry.
class NoopProcessor final : public PostProcessor {
 public:
  void Process(std::vector<int32_t>*, bool) const override {}
};

// [prefix ids] $A [suffix ids]; Bert/Roberta (cls/sep) and TemplateProcessing reduce to this.
class WrapProcessor final : public PostProcessor {
 public:
  WrapProcessor(std::vector<int32_t> prefix, std::vector<int32_t> suffix)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)) {}
  void Process(std::vector<int32_t>* ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    ids->insert(ids->begin(), prefix_.begin(), prefix_.end());
    ids->insert(ids->end(), suffix_.begin(), suffix_.end());
  }

 private:
  std::vector<int32_t> prefix_, suffix_;
};

// A template that repeats $A (unusual but legal) is expanded literally.
class TemplateProcessor final : public PostProcessor {
 public:
  // Each element: the special ids to insert, or nullopt for the sequence itself.
  explicit TemplateProcessor(std::vector<std::optional<std::vector<int32_t>>> parts)
      : parts_(std::move(parts)) {}
  void Process(std::vector<int32_t>* ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    std::vector<int32_t> out;
    for (const auto& part : parts_) {
      const std::vector<int32_t>& src = part ? *part : *ids;
      out.insert(out.end(), src.begin(), src.end());
    }
    *ids = std::move(out);
  }

 private:
  std::vector<std::optional<std::vector<int32_t>>> parts_;
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts)
      : parts_(std::move(parts)) {}
  void Process(std::vector<int32_t>* ids, bool add_special_tokens) const override {
    for (const auto& p : parts_) p->Process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

// Reads ["token", id].
StatusOr<int32_t> TokenIdPair(const nlohmann::json& j, std::string_view key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer()) {
    return InvalidArgument("expected [token, id] for '" + std::string(key) + "'");
  }
  return (*it)[1].get<int32_t>();
}

StatusOr<std::unique_ptr<PostProcessor>> TemplateFromJson(const nlohmann::json& j) {
  auto single = j.find("single");
  if (single == j.end() || !single->is_array()) {
    return InvalidArgument("TemplateProcessing without a 'single' template");
  }
  const nlohmann::json specials = j.value("special_tokens", nlohmann::json::object());
  std::vector<std::optional<std::vector<int32_t>>> parts;
  for (const auto& piece : *single) {
    if (piece.contains("Sequence")) {
      parts.emplace_back(std::nullopt);
      continue;
    }
    if (!piece.contains("SpecialToken") || !piece["SpecialToken"].contains("id")) {
      return InvalidArgument("bad template piece " + piece.dump());
    }
    const std::string name = piece["SpecialToken"]["id"].get<std::string>();
    if (!specials.contains(name) || !specials[name].contains("ids")) {
      return InvalidArgument("template uses special token '" + name + "' without ids");
    }
    std::vector<int32_t> ids;
    for (const auto& id : specials[name]["ids"]) ids.push_back(id.get<int32_t>());
    parts.emplace_back(std::move(ids));
  }
  return std::unique_ptr<PostProcessor>(new TemplateProcessor(std::move(parts)));
}

}  // namespace

StatusOr<std::unique_ptr<PostProcessor>> PostProcessorFromJson(const nlohmann::json& j) {
  if (j.is_null()) return std::unique_ptr<PostProcessor>();
  if (!j.is_object()) return InvalidArgument("post_processor must be an object");
  const std::string type = JsonType(j);
  if (type == "ByteLevel") return std::unique_ptr<PostProcessor>(new NoopProcessor());
  if (type == "TemplateProcessing") return TemplateFromJson(j);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    TSR_ASSIGN_OR_RETURN(int32_t cls, TokenIdPair(j, "cls"));
    TSR_ASSIGN_OR_RETURN(int32_t sep, TokenIdPair(j, "sep"));
    return std::unique_ptr<PostProcessor>(new WrapProcessor({cls}, {sep}));
  }
  if (type == "Sequence") {
    auto it = j.find("processors");
    if (it == j.end() || !it->is_array()) return InvalidArgument("Sequence without processors");
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const auto& sub : *it) {
      TSR_ASSIGN_OR_RETURN(auto part, PostProcessorFromJson(sub));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<PostProcessor>(new SequenceProcessor(std::move(parts)));
  }
  return Unimplemented("post_processor type '" + type + "' is not supported");
}

}  // namespace tessera::text::internal
