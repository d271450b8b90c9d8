// JinjaTemplate: a sandboxed interpreter for the Jinja2 subset that Hugging Face chat templates
// use.
//
// Semantics follow Python's jinja2 as transformers configures it for chat templates:
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]),
// default Undefined, a json.dumps-style `tojson`, and globals raise_exception / strftime_now.
// Templates are untrusted input: rendering is bounded by TemplateLimits and never touches the
// filesystem; every failure comes back as a Status, never a crash.
#ifndef TESSERA_TEXT_JINJA_H_
#define TESSERA_TEXT_JINJA_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "tessera/core/status.h"

namespace tessera::text {

// Bounds on one Render call. Exceeding any of them fails the render with kResourceExhausted.
struct TemplateLimits {
  int64_t max_loop_iterations = 1'000'000;  // summed over every loop (and range()) in a render
  int max_recursion_depth = 256;            // nested macro / caller() calls
  size_t max_output_bytes = 64 << 20;       // the output, and any single string built on the way
};

// Per-render knobs that are not limits.
struct RenderOptions {
  // When set, strftime_now() formats this instant (UTC) instead of the local wall clock, so that
  // templates that print today's date render reproducibly (golden tests).
  std::optional<int64_t> fixed_now_unix_seconds;
};

namespace jinja {
struct TemplateProgram;  // the parsed template (private)
}

// A parsed template. Parse once, render many times.
// Thread-safe: Render is const and keeps all its state on the calling thread.
// Copies are cheap and share the immutable parse tree.
class JinjaTemplate {
 public:
  // Parses `source`. A syntax error returns kInvalidArgument with "line:col: message".
  static StatusOr<JinjaTemplate> Parse(std::string_view source);

  // Renders with `context` as the template's variables. Objects keep their key order, as Python
  // dicts do (tojson and dict iteration depend on it), which is why this takes ordered_json; a
  // plain nlohmann::json converts implicitly (its keys are then in sorted order).
  // Errors: kInvalidArgument for template errors (undefined access, type errors,
  // raise_exception(msg) -> msg), kResourceExhausted when a limit is hit.
  StatusOr<std::string> Render(const nlohmann::ordered_json& context,
                               const TemplateLimits& limits = {}) const;
  StatusOr<std::string> Render(const nlohmann::ordered_json& context, const TemplateLimits& limits,
                               const RenderOptions& options) const;

 private:
  explicit JinjaTemplate(std::shared_ptr<const jinja::TemplateProgram> program)
      : program_(std::move(program)) {}
  std::shared_ptr<const jinja::TemplateProgram> program_;
};

}  // namespace tessera::text

#endif  // TESSERA_TEXT_JINJA_H_
