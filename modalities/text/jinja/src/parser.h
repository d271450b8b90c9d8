// Parser: tokens -> TemplateProgram, following jinja2's grammar and operator precedence.
#ifndef TESSERA_TEXT_JINJA_SRC_PARSER_H_
#define TESSERA_TEXT_JINJA_SRC_PARSER_H_

#include <memory>
#include <string_view>

#include "ast.h"

namespace tessera::text::jinja {

// Throws JinjaError("line:col: message") on a syntax error. Nesting deeper than a fixed bound is a
// syntax error too, so that hostile templates cannot exhaust the stack.
std::unique_ptr<TemplateProgram> ParseTemplate(std::string_view source);

}  // namespace tessera::text::jinja

#endif  // TESSERA_TEXT_JINJA_SRC_PARSER_H_
