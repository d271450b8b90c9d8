// ChatTemplate: loads a model's chat template and renders it as transformers does.
#include "tessera/text/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace tessera::text {
namespace {

StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "bos_token": "<s>" or {"content": "<s>", ...} or null.
std::string TokenString(const nlohmann::ordered_json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return "";
}

}  // namespace

StatusOr<ChatTemplate> ChatTemplate::FromSource(std::string source, std::string bos,
                                                std::string eos) {
  TSR_ASSIGN_OR_RETURN(JinjaTemplate t, JinjaTemplate::Parse(source));
  return ChatTemplate(std::move(t), std::nullopt, std::move(bos), std::move(eos));
}

StatusOr<ChatTemplate> ChatTemplate::FromModelDir(const std::string& dir) {
  const std::filesystem::path root(dir);
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  const auto config_path = root / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config_path, ec)) {
    TSR_ASSIGN_OR_RETURN(std::string text, ReadFile(config_path));
    config = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      return InvalidArgument(config_path.string() + " is not a JSON object");
    }
  }
  std::string bos = TokenString(config, "bos_token"), eos = TokenString(config, "eos_token");

  std::string default_src;
  std::optional<std::string> tool_use_src;
  const auto jinja_path = root / "chat_template.jinja";
  if (std::filesystem::exists(jinja_path, ec)) {
    TSR_ASSIGN_OR_RETURN(default_src, ReadFile(jinja_path));
  } else {
    auto it = config.find("chat_template");
    if (it == config.end() || it->is_null()) {
      return NotFound(dir +
                      " has no chat_template.jinja and tokenizer_config.json has no chat_template");
    }
    if (it->is_string()) {
      default_src = it->get<std::string>();
    } else if (it->is_array()) {
      bool have_default = false;
      for (const auto& entry : *it) {
        if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") ||
            !entry["name"].is_string() || !entry["template"].is_string()) {
          return InvalidArgument("chat_template list entries need string 'name' and 'template'");
        }
        const std::string name = entry["name"].get<std::string>();
        if (name == "default") {
          default_src = entry["template"].get<std::string>();
          have_default = true;
        } else if (name == "tool_use") {
          tool_use_src = entry["template"].get<std::string>();
        }
      }
      if (!have_default && !tool_use_src)
        return NotFound("chat_template list has no 'default' template");
      if (!have_default) {  // only a tool_use template: transformers would need it named; use it
        default_src = *tool_use_src;
      }
    } else {
      return InvalidArgument("chat_template must be a string or a list of named templates");
    }
  }
  TSR_ASSIGN_OR_RETURN(JinjaTemplate def, JinjaTemplate::Parse(default_src));
  std::optional<JinjaTemplate> tool_use;
  if (tool_use_src) {
    TSR_ASSIGN_OR_RETURN(JinjaTemplate t, JinjaTemplate::Parse(*tool_use_src));
    tool_use = std::move(t);
  }
  return ChatTemplate(std::move(def), std::move(tool_use), std::move(bos), std::move(eos));
}

StatusOr<std::string> ChatTemplate::Apply(const ChatTemplateInputs& in,
                                          const TemplateLimits& limits) const {
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  if (in.extra.is_object()) {
    for (const auto& [k, v] : in.extra.items()) context[k] = v;
  } else if (!in.extra.is_null()) {
    return InvalidArgument("ChatTemplateInputs.extra must be a JSON object or null");
  }
  // The special tokens come from the tokenizer; extra may override them, as transformers' kwargs.
  if (!context.contains("bos_token"))
    context["bos_token"] = in.bos_token.empty() ? bos_ : in.bos_token;
  if (!context.contains("eos_token"))
    context["eos_token"] = in.eos_token.empty() ? eos_ : in.eos_token;
  // transformers always passes documents (None unless RAG documents are given).
  if (!context.contains("documents")) context["documents"] = nullptr;
  context["messages"] = in.messages;
  context["tools"] = in.tools;
  context["add_generation_prompt"] = in.add_generation_prompt;
  const bool has_tools = !in.tools.is_null();
  const JinjaTemplate& t = (has_tools && tool_use_) ? *tool_use_ : default_;
  RenderOptions options;
  options.fixed_now_unix_seconds = in.fixed_now_unix_seconds;
  return t.Render(context, limits, options);
}

}  // namespace tessera::text
