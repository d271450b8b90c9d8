// Python str semantics on UTF-8 strings (code point aware), used by methods and filters.
#ifndef TESSERA_TEXT_JINJA_SRC_STRINGS_H_
#define TESSERA_TEXT_JINJA_SRC_STRINGS_H_

#include <string>
#include <vector>

#include "interpreter.h"
#include "value.h"

namespace tessera::text::jinja {

bool IsPyWhitespace(uint32_t cp);
// str.strip / lstrip / rstrip; chars == nullptr strips whitespace.
std::string PyStrip(const std::string& s, const std::string* chars, bool left, bool right);
std::vector<std::string> PySplitWhitespace(const std::string& s, int64_t maxsplit, bool from_right);
std::vector<std::string> PySplit(const std::string& s, const std::string& sep, int64_t maxsplit,
                                 bool from_right);
std::vector<std::string> PySplitLines(const std::string& s, bool keepends);
std::string PyUpper(const std::string& s);
std::string PyLower(const std::string& s);
std::string PyTitle(const std::string& s);       // str.title()
std::string PyCapitalize(const std::string& s);  // str.capitalize()
std::string PySwapcase(const std::string& s);
std::string JinjaTitle(const std::string& s);  // the `title` filter (word-start based)
std::string PyReplace(Renderer& r, const std::string& s, const std::string& from,
                      const std::string& to, int64_t count);
std::string PyPad(const std::string& s, const std::string& how, int64_t width,
                  const std::string& fill);
bool PyStrPredicate(const std::string& s, const std::string& name);  // isdigit, isalpha, ...
std::string PyFormat(Renderer& r, const std::string& fmt, const CallArgs& args);    // str.format
std::string PercentFormat(Renderer& r, const std::string& fmt, const Value& args);  // fmt % args
std::string HtmlEscape(const std::string& s);
int64_t WordCount(const std::string& s);

}  // namespace tessera::text::jinja

#endif  // TESSERA_TEXT_JINJA_SRC_STRINGS_H_
