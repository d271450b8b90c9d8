// ChatTemplate: applies a model's chat template the way transformers' apply_chat_template does.
#ifndef TESSERA_TEXT_CHAT_TEMPLATE_H_
#define TESSERA_TEXT_CHAT_TEMPLATE_H_

#include <nlohmann/json.hpp>
#include <string>

#include "tessera/core/status.h"
#include "tessera/text/jinja.h"

namespace tessera::text {

// Everything one rendering needs. JSON fields are ordered_json so that dict key order survives
// (tool schemas are printed with tojson in the caller's order); nlohmann::json converts implicitly.
struct ChatTemplateInputs {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content, ...}]
  nlohmann::ordered_json tools;  // null if none; else a list of JSON tool schemas
  bool add_generation_prompt = true;
  nlohmann::ordered_json extra;  // extra context variables (object or null), e.g. enable_thinking
  std::string bos_token, eos_token;
  // Optional clock for strftime_now(); see RenderOptions.
  std::optional<int64_t> fixed_now_unix_seconds;
};

// Thread-safe after construction (Apply is const). Cheap to copy.
class ChatTemplate {
 public:
  // Loads from a model folder: chat_template.jinja if present, else tokenizer_config.json's
  // "chat_template" (a string, or a list of {"name","template"}: "default", or "tool_use" when
  // tools are given and such a template exists, as transformers picks). bos/eos token strings
  // come from tokenizer_config.json ("bos_token": "<s>" or {"content": "<s>", ...}).
  static StatusOr<ChatTemplate> FromModelDir(const std::string& dir);
  static StatusOr<ChatTemplate> FromSource(std::string source, std::string bos, std::string eos);

  // Renders. Context = extra, then messages, tools, add_generation_prompt, bos_token, eos_token
  // (the named ones win, as in transformers where they are explicit keyword arguments).
  StatusOr<std::string> Apply(const ChatTemplateInputs& in,
                              const TemplateLimits& limits = {}) const;

  const std::string& bos_token() const { return bos_; }
  const std::string& eos_token() const { return eos_; }

 private:
  JinjaTemplate default_;
  std::optional<JinjaTemplate> tool_use_;  // the "tool_use" named template, when present
  std::string bos_, eos_;

  ChatTemplate(JinjaTemplate def, std::optional<JinjaTemplate> tool_use, std::string bos,
               std::string eos)
      : default_(std::move(def)),
        tool_use_(std::move(tool_use)),
        bos_(std::move(bos)),
        eos_(std::move(eos)) {}
};

}  // namespace tessera::text

#endif  // TESSERA_TEXT_CHAT_TEMPLATE_H_
