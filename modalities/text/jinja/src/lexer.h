// Lexer: template source -> tokens, applying jinja2's whitespace rules (trim_blocks,
// lstrip_blocks, and the `-` / `+` modifiers) while it splits text from tags.
#ifndef TESSERA_TEXT_JINJA_SRC_LEXER_H_
#define TESSERA_TEXT_JINJA_SRC_LEXER_H_

#include <string>
#include <string_view>
#include <vector>

#include "value.h"

namespace tessera::text::jinja {

enum class Tok {
  kText,
  kVarBegin,
  kVarEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEof
};

struct Token {
  Tok type;
  std::string text;  // text / name / operator / decoded string literal
  Value value;       // kInt / kFloat literal
  int line = 1, col = 1;
};

// Throws JinjaError ("line:col: message") on malformed input.
std::vector<Token> Tokenize(std::string_view source);

}  // namespace tessera::text::jinja

#endif  // TESSERA_TEXT_JINJA_SRC_LEXER_H_
