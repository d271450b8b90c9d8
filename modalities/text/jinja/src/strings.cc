#include "strings.h"

#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tessera::text::jinja {
namespace {

std::string Encode(const std::vector<uint32_t>& cps, size_t b = 0, size_t e = std::string::npos) {
  std::string out;
  e = std::min(e, cps.size());
  for (size_t i = b; i < e; ++i) AppendUtf8(&out, cps[i]);
  return out;
}

bool IsCased(uint32_t cp) {
  auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}
uint32_t Up(uint32_t cp) {
  return static_cast<uint32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cp)));
}
uint32_t Low(uint32_t cp) {
  return static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
}
uint32_t TitleCp(uint32_t cp) {
  return static_cast<uint32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(cp)));
}

template <typename F>
std::string MapCps(const std::string& s, F f) {
  if (IsAscii(s)) {
    std::string out = s;
    for (char& c : out) c = static_cast<char>(f(static_cast<uint32_t>(c)));
    return out;
  }
  std::string out;
  for (uint32_t cp : DecodeUtf8(s)) AppendUtf8(&out, f(cp));
  return out;
}

bool IsWordChar(uint32_t cp) {
  if (cp == '_') return true;
  auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
         (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO) || c == UTF8PROC_CATEGORY_MN ||
         c == UTF8PROC_CATEGORY_MC;
}

}  // namespace

bool IsPyWhitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::string PyStrip(const std::string& s, const std::string* chars, bool left, bool right) {
  std::vector<uint32_t> cps = DecodeUtf8(s);
  std::vector<uint32_t> set;
  if (chars) set = DecodeUtf8(*chars);
  auto strip_me = [&](uint32_t cp) {
    if (!chars) return IsPyWhitespace(cp);
    return std::find(set.begin(), set.end(), cp) != set.end();
  };
  size_t b = 0, e = cps.size();
  if (left) {
    while (b < e && strip_me(cps[b])) ++b;
  }
  if (right) {
    while (e > b && strip_me(cps[e - 1])) --e;
  }
  return Encode(cps, b, e);
}

std::vector<std::string> PySplitWhitespace(const std::string& s, int64_t maxsplit,
                                           bool from_right) {
  std::vector<uint32_t> cps = DecodeUtf8(s);
  std::vector<std::string> out;
  if (!from_right) {
    size_t i = 0;
    while (true) {
      while (i < cps.size() && IsPyWhitespace(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        size_t e = cps.size();
        while (e > i && IsPyWhitespace(cps[e - 1])) --e;
        out.push_back(Encode(cps, i, e));
        break;
      }
      size_t j = i;
      while (j < cps.size() && !IsPyWhitespace(cps[j])) ++j;
      out.push_back(Encode(cps, i, j));
      i = j;
    }
    return out;
  }
  size_t i = cps.size();
  while (true) {
    while (i > 0 && IsPyWhitespace(cps[i - 1])) --i;
    if (i == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      size_t b = 0;
      while (b < i && IsPyWhitespace(cps[b])) ++b;
      out.push_back(Encode(cps, b, i));
      break;
    }
    size_t j = i;
    while (j > 0 && !IsPyWhitespace(cps[j - 1])) --j;
    out.push_back(Encode(cps, j, i));
    i = j;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> PySplit(const std::string& s, const std::string& sep, int64_t maxsplit,
                                 bool from_right) {
  std::vector<std::string> out;
  if (!from_right) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      size_t p = s.find(sep, start);
      if (p == std::string::npos) break;
      out.push_back(s.substr(start, p - start));
      start = p + sep.size();
    }
    out.push_back(s.substr(start));
    return out;
  }
  size_t end = s.size();
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    if (end < sep.size()) break;
    size_t p = s.rfind(sep, end - sep.size());
    if (p == std::string::npos) break;
    out.push_back(s.substr(p + sep.size(), end - p - sep.size()));
    end = p;
  }
  out.push_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> PySplitLines(const std::string& s, bool keepends) {
  std::vector<uint32_t> cps = DecodeUtf8(s);
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  auto is_break = [](uint32_t c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
           c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
  };
  while (i < cps.size()) {
    if (!is_break(cps[i])) {
      ++i;
      continue;
    }
    size_t eol = i;
    size_t next = (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ? i + 2 : i + 1;
    out.push_back(Encode(cps, start, keepends ? next : eol));
    start = i = next;
  }
  if (start < cps.size()) out.push_back(Encode(cps, start));
  return out;
}

std::string PyUpper(const std::string& s) {
  return MapCps(s, Up);
}
std::string PyLower(const std::string& s) {
  return MapCps(s, Low);
}
std::string PySwapcase(const std::string& s) {
  return MapCps(s, [](uint32_t c) { return Up(c) != c ? Up(c) : Low(c); });
}

std::string PyTitle(const std::string& s) {
  std::string out;
  bool prev_cased = false;
  for (uint32_t cp : DecodeUtf8(s)) {
    AppendUtf8(&out, prev_cased ? Low(cp) : TitleCp(cp));
    prev_cased = IsCased(cp);
  }
  return out;
}

std::string PyCapitalize(const std::string& s) {
  std::vector<uint32_t> cps = DecodeUtf8(s);
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i) AppendUtf8(&out, i == 0 ? TitleCp(cps[i]) : Low(cps[i]));
  return out;
}

// jinja2's title filter: upper-case the first character after each run of [-\s({\[<].
std::string JinjaTitle(const std::string& s) {
  std::string out;
  bool word_start = true;
  for (uint32_t cp : DecodeUtf8(s)) {
    bool sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || IsPyWhitespace(cp);
    if (sep) {
      AppendUtf8(&out, cp);
      word_start = true;
    } else {
      AppendUtf8(&out, word_start ? Up(cp) : Low(cp));
      word_start = false;
    }
  }
  return out;
}

std::string PyReplace(Renderer& r, const std::string& s, const std::string& from,
                      const std::string& to, int64_t count) {
  std::string out;
  int64_t done = 0;
  if (from.empty()) {
    std::vector<uint32_t> cps = DecodeUtf8(s);
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      if (i < cps.size()) AppendUtf8(&out, cps[i]);
      r.CheckSize(out.size());
    }
    return out;
  }
  size_t start = 0;
  while (count < 0 || done < count) {
    size_t p = s.find(from, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += to;
    r.CheckSize(out.size());
    start = p + from.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  r.CheckSize(out.size());
  return out;
}

std::string PyPad(const std::string& s, const std::string& how, int64_t width,
                  const std::string& fill_str) {
  std::vector<uint32_t> fill_cps = DecodeUtf8(fill_str);
  if (fill_cps.size() != 1) Fail("The fill character must be exactly one character long");
  std::string fill;
  AppendUtf8(&fill, fill_cps[0]);
  int64_t len = static_cast<int64_t>(CodePointCount(s));
  if (width <= len) return s;
  int64_t pad = width - len;
  auto rep = [&](int64_t n) {
    std::string o;
    for (int64_t i = 0; i < n; ++i) o += fill;
    return o;
  };
  if (how == "ljust") return s + rep(pad);
  if (how == "rjust") return rep(pad) + s;
  if (how == "zfill") {
    if (!s.empty() && (s[0] == '-' || s[0] == '+'))
      return s.substr(0, 1) + std::string(static_cast<size_t>(pad), '0') + s.substr(1);
    return std::string(static_cast<size_t>(pad), '0') + s;
  }
  int64_t left = pad / 2 + (pad & width & 1);  // CPython's centering rule
  return rep(left) + s + rep(pad - left);
}

bool PyStrPredicate(const std::string& s, const std::string& name) {
  std::vector<uint32_t> cps = DecodeUtf8(s);
  if (name == "islower" || name == "isupper") {
    bool any = false;
    for (uint32_t cp : cps) {
      if (!IsCased(cp)) continue;
      any = true;
      if (name == "islower" ? Low(cp) != cp : Up(cp) != cp) return false;
    }
    return any;
  }
  if (name == "istitle") return !s.empty() && PyTitle(s) == s;
  if (cps.empty()) return false;
  for (uint32_t cp : cps) {
    auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
    bool ok;
    if (name == "isspace") {
      ok = IsPyWhitespace(cp);
    } else if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") {
      ok = c == UTF8PROC_CATEGORY_ND ||
           (name == "isnumeric" && (c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO));
    } else if (name == "isalpha") {
      ok = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
    } else {  // isalnum
      ok = (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
    }
    if (!ok) return false;
  }
  return true;
}

// str.format with positional / named fields and !r / !s conversions; format specs are rejected.
std::string PyFormat(Renderer& r, const std::string& fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}')
        ++i;
      else
        Fail("Single '}' encountered in format string");
      out.push_back('}');
      continue;
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) Fail("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    char conv = 0;
    size_t bang = field.find('!');
    if (bang != std::string::npos) {
      conv = bang + 1 < field.size() ? field[bang + 1] : 0;
      field = field.substr(0, bang);
    }
    if (field.find(':') != std::string::npos) Fail("format specs are not supported in str.format");
    const Value* v = nullptr;
    if (field.empty()) {
      if (auto_index >= args.args.size())
        Fail("Replacement index " + std::to_string(auto_index) + " out of range");
      v = &args.args[auto_index++];
    } else if (std::all_of(field.begin(), field.end(),
                           [](char ch) { return ch >= '0' && ch <= '9'; })) {
      size_t idx = std::stoul(field);
      if (idx >= args.args.size()) Fail("Replacement index " + field + " out of range");
      v = &args.args[idx];
    } else {
      v = args.Kwarg(field);
      if (!v) Fail("KeyError: '" + field + "'");
    }
    out += conv == 'r' ? Repr(*v) : Str(*v);
    r.CheckSize(out.size());
  }
  return out;
}

std::string PercentFormat(Renderer& r, const std::string& fmt, const Value& args) {
  List positional;
  const Dict* mapping = nullptr;
  if (args.is_tuple()) {
    positional = args.list();
  } else if (args.is_dict()) {
    mapping = &args.dict();
    positional.push_back(args);
  } else {
    positional.push_back(args);
  }
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    if (++i >= fmt.size()) Fail("incomplete format");
    const Value* v = nullptr;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos || !mapping) Fail("format requires a mapping");
      v = mapping->FindStr(fmt.substr(i + 1, close - i - 1));
      if (!v) Fail("KeyError: '" + fmt.substr(i + 1, close - i - 1) + "'");
      i = close + 1;
    }
    std::string spec = "%";
    while (i < fmt.size() &&
           std::string_view("-+ #0123456789.").find(fmt[i]) != std::string_view::npos)
      spec.push_back(fmt[i++]);
    if (i >= fmt.size()) Fail("incomplete format");
    char conv = fmt[i];
    if (conv == '%') {
      out.push_back('%');
      continue;
    }
    if (!v) {
      if (next >= positional.size()) Fail("not enough arguments for format string");
      v = &positional[next++];
    }
    char buf[512];
    if (spec.size() > 20) Fail("format spec too long");
    switch (conv) {
      case 's': out += Str(*v); break;
      case 'r': out += Repr(*v); break;
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o':
        if (!v->is_number())
          Fail("%" + std::string(1, conv) + " format: a real number is required, not " +
               TypeName(*v));
        std::snprintf(
            buf, sizeof(buf), (spec + "ll" + (conv == 'i' ? 'd' : conv)).c_str(),
            static_cast<long long>(v->is_float() ? std::trunc(v->float_value()) : v->int_value()));
        out += buf;
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        if (!v->is_number()) Fail("must be real number, not " + TypeName(*v));
        std::snprintf(buf, sizeof(buf), (spec + conv).c_str(), v->float_value());
        out += buf;
        break;
      default: Fail(std::string("unsupported format character '") + conv + "'");
    }
    r.CheckSize(out.size());
  }
  if (!mapping && next < positional.size())
    Fail("not all arguments converted during string formatting");
  return out;
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

int64_t WordCount(const std::string& s) {
  int64_t n = 0;
  bool in_word = false;
  for (uint32_t cp : DecodeUtf8(s)) {
    bool w = IsWordChar(cp);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

}  // namespace tessera::text::jinja
