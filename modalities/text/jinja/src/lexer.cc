#include "lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace tessera::text::jinja {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsNameChar(char c) {
  return IsNameStart(c) || IsDigit(c);
}

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> Run() {
    while (pos_ < src_.size()) {
      size_t tag = FindTagStart(pos_);
      if (tag == std::string::npos) {
        Emit(Tok::kText, src_.substr(pos_), pos_);
        break;
      }
      LexTag(tag);
    }
    Emit(Tok::kEof, "", src_.size());
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void Error(size_t at, const std::string& msg) const {
    auto [line, col] = LineCol(at);
    Fail(std::to_string(line) + ":" + std::to_string(col) + ": " + msg);
  }

  std::pair<int, int> LineCol(size_t at) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), at);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    return {static_cast<int>(line), static_cast<int>(at - line_starts_[line - 1] + 1)};
  }

  Token& Emit(Tok type, std::string text, size_t at) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    std::tie(t.line, t.col) = LineCol(at);
    tokens_.push_back(std::move(t));
    return tokens_.back();
  }

  size_t FindTagStart(size_t from) const {
    for (size_t t = src_.find('{', from); t != std::string::npos; t = src_.find('{', t + 1)) {
      if (t + 1 < src_.size() && (src_[t + 1] == '{' || src_[t + 1] == '%' || src_[t + 1] == '#')) {
        return t;
      }
    }
    return std::string::npos;
  }

  // The text before a tag, after the tag's `-` / `+` modifier and lstrip_blocks have had their say.
  void EmitTextBefore(std::string text, size_t at, char kind, char mod) {
    if (mod == '-') {
      size_t end = text.size();
      while (end > 0 && IsSpace(text[end - 1])) --end;
      text.resize(end);
    } else if (mod != '+' && kind != '{') {
      // lstrip_blocks: drop spaces between the line start and a block / comment tag.
      size_t l_pos = text.rfind('\n');
      l_pos = (l_pos == std::string::npos) ? 0 : l_pos + 1;
      if (l_pos > 0 || line_starting_) {
        bool all_space = l_pos < text.size();
        for (size_t i = l_pos; i < text.size(); ++i) all_space = all_space && IsSpace(text[i]);
        if (all_space) text.resize(l_pos);
      }
    }
    if (!text.empty()) Emit(Tok::kText, std::move(text), at);
  }

  // After a closing `%}` / `#}` at `end` (one past the delimiter): trim_blocks or `-` stripping.
  size_t AfterClose(size_t end, char mod, bool block_like) {
    size_t p = end;
    if (mod == '-') {
      while (p < src_.size() && IsSpace(src_[p])) ++p;
    } else if (mod != '+' && block_like && p < src_.size() && src_[p] == '\n') {
      ++p;  // trim_blocks
    }
    line_starting_ = (p > 0 && src_[p - 1] == '\n');
    return p;
  }

  void LexTag(size_t tag) {
    char kind = src_[tag + 1];
    char mod = 0;
    if (tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+'))
      mod = src_[tag + 2];
    size_t inner = tag + 2 + (mod ? 1 : 0);
    std::string text = src_.substr(pos_, tag - pos_);
    if (kind == '%' && IsRawBegin(inner)) {
      EmitTextBefore(std::move(text), pos_, kind, mod);
      LexRaw(tag, inner);
      return;
    }
    EmitTextBefore(std::move(text), pos_, kind, mod);
    line_starting_ = false;
    if (kind == '#') {
      size_t close = src_.find("#}", inner);
      if (close == std::string::npos) Error(tag, "missing end of comment tag");
      char end_mod = (close > inner && (src_[close - 1] == '-' || src_[close - 1] == '+'))
                         ? src_[close - 1]
                         : 0;
      pos_ = AfterClose(close + 2, end_mod, true);
      return;
    }
    Emit(kind == '{' ? Tok::kVarBegin : Tok::kBlockBegin, "", tag);
    pos_ = LexExpressionTokens(inner, kind == '{');
  }

  bool IsRawBegin(size_t p) const {
    while (p < src_.size() && IsSpace(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    if (p < src_.size() && IsNameChar(src_[p])) return false;
    while (p < src_.size() && IsSpace(src_[p])) ++p;
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0;
  }

  void LexRaw(size_t tag, size_t inner) {
    size_t p = src_.find("raw", inner) + 3;
    while (IsSpace(src_[p])) ++p;
    if (src_[p] == '-') {
      p += 3;
      while (p < src_.size() && IsSpace(src_[p])) ++p;
    } else {
      p += 2;  // no trim_blocks after {% raw %}, as jinja2
    }
    line_starting_ = (p > 0 && src_[p - 1] == '\n');
    // Find {%[-+]? endraw [-+]?%}.
    for (size_t t = src_.find("{%", p); t != std::string::npos; t = src_.find("{%", t + 1)) {
      char mod =
          (t + 2 < src_.size() && (src_[t + 2] == '-' || src_[t + 2] == '+')) ? src_[t + 2] : 0;
      size_t q = t + 2 + (mod ? 1 : 0);
      while (q < src_.size() && IsSpace(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src_.size() && IsSpace(src_[q])) ++q;
      char end_mod = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_mod = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) continue;
      EmitTextBefore(src_.substr(p, t - p), p, '%', mod);
      pos_ = AfterClose(q + 2, end_mod, true);
      return;
    }
    Error(tag, "missing end of raw directive");
  }

  // Lexes the inside of a {{ }} or {% %} tag from `p`; returns the position after the tag.
  size_t LexExpressionTokens(size_t p, bool is_var) {
    std::vector<char> balance;
    const size_t open = p;
    while (true) {
      while (p < src_.size() && IsSpace(src_[p])) ++p;
      if (p >= src_.size())
        Error(open, is_var ? "unexpected end of template, expected '}}'"
                           : "unexpected end of template, expected '%}'");
      if (balance.empty()) {
        if (is_var) {
          if (src_.compare(p, 3, "-}}") == 0) {
            Emit(Tok::kVarEnd, "", p);
            return AfterClose(p + 3, '-', false);
          }
          if (src_.compare(p, 2, "}}") == 0) {
            Emit(Tok::kVarEnd, "", p);
            line_starting_ = false;
            return p + 2;
          }
        } else {
          for (char m : {'-', '+'}) {
            if (src_[p] == m && src_.compare(p + 1, 2, "%}") == 0) {
              Emit(Tok::kBlockEnd, "", p);
              return AfterClose(p + 3, m, true);
            }
          }
          if (src_.compare(p, 2, "%}") == 0) {
            Emit(Tok::kBlockEnd, "", p);
            return AfterClose(p + 2, 0, true);
          }
        }
      }
      p = LexOneToken(p, &balance);
    }
  }

  size_t LexOneToken(size_t p, std::vector<char>* balance) {
    char c = src_[p];
    if (IsNameStart(c)) {
      size_t e = p;
      while (e < src_.size() && IsNameChar(src_[e])) ++e;
      Emit(Tok::kName, src_.substr(p, e - p), p);
      return e;
    }
    if (IsDigit(c)) return LexNumber(p);
    if (c == '\'' || c == '"') return LexString(p);
    static const char* kOps2[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kOps2) {
      if (src_.compare(p, 2, op) == 0) {
        Emit(Tok::kOp, op, p);
        return p + 2;
      }
    }
    if (std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos) {
      Error(p, std::string("unexpected char '") + c + "'");
    }
    if (c == '(' || c == '[' || c == '{') balance->push_back(c);
    if (c == ')' || c == ']' || c == '}') {
      char want = c == ')' ? '(' : (c == ']' ? '[' : '{');
      if (balance->empty() || balance->back() != want)
        Error(p, std::string("unexpected '") + c + "'");
      balance->pop_back();
    }
    Emit(Tok::kOp, std::string(1, c), p);
    return p + 1;
  }

  size_t LexNumber(size_t p) {
    auto digits = [&](size_t q) {
      while (q < src_.size() &&
             (IsDigit(src_[q]) || (src_[q] == '_' && q + 1 < src_.size() && IsDigit(src_[q + 1]))))
        ++q;
      return q;
    };
    size_t e = digits(p);
    bool is_float = false;
    // After a dot (`x.0.1`) a number is an attribute index, never a float, as in jinja2.
    const bool after_dot = p > 0 && src_[p - 1] == '.';
    if (!after_dot && e + 1 < src_.size() && src_[e] == '.' && IsDigit(src_[e + 1])) {
      is_float = true;
      e = digits(e + 1);
    }
    if (!after_dot && e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t q = e + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && IsDigit(src_[q])) {
        is_float = true;
        e = digits(q);
      }
    }
    std::string text;
    for (size_t i = p; i < e; ++i) {
      if (src_[i] != '_') text.push_back(src_[i]);
    }
    if (!is_float && text.size() > 1 && text[0] == '0' &&
        text.find_first_not_of('0') != std::string::npos) {
      Error(p, "leading zeros in decimal integer literals are not permitted");
    }
    Token& t = Emit(is_float ? Tok::kFloat : Tok::kInt, text, p);
    errno = 0;
    if (is_float) {
      t.value = Value(std::strtod(text.c_str(), nullptr));
    } else {
      long long v = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) Error(p, "integer literal too large");
      t.value = Value(static_cast<int64_t>(v));
    }
    return e;
  }

  size_t LexString(size_t p) {
    char quote = src_[p];
    std::string out;
    size_t i = p + 1;
    while (true) {
      if (i >= src_.size()) Error(p, "unterminated string");
      char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        out.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) Error(p, "unterminated string");
      i = DecodeEscape(i, &out);
    }
    Emit(Tok::kString, std::move(out), p);
    return i + 1;
  }

  // Python's unicode-escape decoding of one backslash sequence at `i`; returns the next position.
  size_t DecodeEscape(size_t i, std::string* out) {
    char e = src_[i + 1];
    switch (e) {
      case '\n': return i + 2;
      case '\\': out->push_back('\\'); return i + 2;
      case '\'': out->push_back('\''); return i + 2;
      case '"': out->push_back('"'); return i + 2;
      case 'a': out->push_back('\a'); return i + 2;
      case 'b': out->push_back('\b'); return i + 2;
      case 'f': out->push_back('\f'); return i + 2;
      case 'n': out->push_back('\n'); return i + 2;
      case 'r': out->push_back('\r'); return i + 2;
      case 't': out->push_back('\t'); return i + 2;
      case 'v': out->push_back('\v'); return i + 2;
      default: break;
    }
    if (e >= '0' && e <= '7') {
      size_t q = i + 1;
      uint32_t v = 0;
      for (int k = 0; k < 3 && q < src_.size() && src_[q] >= '0' && src_[q] <= '7'; ++k, ++q) {
        v = v * 8 + static_cast<uint32_t>(src_[q] - '0');
      }
      AppendUtf8(out, v);
      return q;
    }
    int width = e == 'x' ? 2 : (e == 'u' ? 4 : (e == 'U' ? 8 : 0));
    if (width == 0) {
      out->push_back('\\');  // unknown escapes stay as written
      return i + 1;
    }
    uint32_t v = 0;
    for (int k = 0; k < width; ++k) {
      size_t q = i + 2 + static_cast<size_t>(k);
      char h = q < src_.size() ? src_[q] : '\0';
      int d = (h >= '0' && h <= '9')   ? h - '0'
              : (h >= 'a' && h <= 'f') ? h - 'a' + 10
              : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                       : -1;
      if (d < 0) Error(i, "truncated \\" + std::string(1, e) + " escape in string literal");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    if (v > 0x10FFFF) Error(i, "illegal Unicode character in string literal");
    AppendUtf8(out, v);
    return i + 2 + static_cast<size_t>(width);
  }

  std::string src_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

// jinja2 normalizes \r\n and \r to \n and drops one trailing newline (keep_trailing_newline=False).
std::string NormalizeNewlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::vector<Token> Tokenize(std::string_view source) {
  return Lexer(NormalizeNewlines(source)).Run();
}

}  // namespace tessera::text::jinja
