// Public entry points: parse / render with every internal error turned into a Status.
#include "tessera/text/jinja.h"

#include <exception>
#include <new>

#include "ast.h"
#include "interpreter.h"
#include "parser.h"

namespace tessera::text {

StatusOr<JinjaTemplate> JinjaTemplate::Parse(std::string_view source) {
  try {
    std::shared_ptr<const jinja::TemplateProgram> program = jinja::ParseTemplate(source);
    return JinjaTemplate(std::move(program));
  } catch (const jinja::JinjaError& e) {
    return Status(e.code(), "template syntax error: " + e.message());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("out of memory while parsing the template");
  }
}

StatusOr<std::string> JinjaTemplate::Render(const nlohmann::ordered_json& context,
                                            const TemplateLimits& limits) const {
  return Render(context, limits, RenderOptions{});
}

StatusOr<std::string> JinjaTemplate::Render(const nlohmann::ordered_json& context,
                                            const TemplateLimits& limits,
                                            const RenderOptions& options) const {
  if (!program_) return FailedPrecondition("JinjaTemplate used before Parse");
  try {
    jinja::Renderer renderer(limits, options);
    return renderer.Run(*program_, context);
  } catch (const jinja::JinjaError& e) {
    return Status(e.code(), e.message());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("out of memory while rendering the template");
  } catch (const std::exception& e) {  // e.g. std::length_error from a hostile template
    return InvalidArgument(std::string("template error: ") + e.what());
  }
}

}  // namespace tessera::text
