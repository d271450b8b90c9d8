// libFuzzer target: arbitrary bytes as a template, rendered against a small chat context with
// tight limits. Any crash, hang, sanitizer report or exception escaping the API is a bug.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "tessera/text/jinja.h"

namespace {

const nlohmann::ordered_json& Context() {
  static const auto* ctx = new nlohmann::ordered_json(nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Héllo 🚀 <think>x</think>"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call12345", "type": "function",
        "function": {"name": "f", "arguments": {"a": 1, "b": [true, null, 2.5]}}}]},
      {"role": "tool", "tool_call_id": "call12345", "content": "42"}
    ],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
      "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"
  })"));
  return *ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto tpl = tessera::text::JinjaTemplate::Parse(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (!tpl.ok()) return 0;
  tessera::text::TemplateLimits limits;
  limits.max_loop_iterations = 20000;
  limits.max_recursion_depth = 64;
  limits.max_output_bytes = 1 << 20;
  tessera::text::RenderOptions options;
  options.fixed_now_unix_seconds = 0;
  (void)tpl->Render(Context(), limits, options);
  return 0;
}
