#include "value.h"

#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace tessera::text::jinja {

void Fail(std::string message) {
  throw JinjaError(StatusCode::kInvalidArgument, std::move(message));
}
void FailLimit(std::string message) {
  throw JinjaError(StatusCode::kResourceExhausted, std::move(message));
}

namespace {
thread_local size_t repr_limit = SIZE_MAX;
}  // namespace

ScopedReprLimit::ScopedReprLimit(size_t bytes) : saved_(repr_limit) {
  repr_limit = bytes;
}
ScopedReprLimit::~ScopedReprLimit() {
  repr_limit = saved_;
}
void ScopedReprLimit::Check(size_t bytes) {
  if (bytes > repr_limit)
    FailLimit("a value's text exceeded max_output_bytes (" + std::to_string(repr_limit) + ")");
}

// ---------------------------------------------------------------------------------------------
// Value

Value::Value(std::string s) : kind_(Kind::kString) {
  ptr_ = std::make_shared<const std::string>(std::move(s));
}

Value Value::Undefined(std::string hint) {
  Value v;
  if (!hint.empty()) v.ptr_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::MakeList(List items, bool tuple) {
  Value v;
  v.kind_ = Kind::kList;
  v.tuple_ = tuple;
  v.ptr_ = std::make_shared<const List>(std::move(items));
  return v;
}

Value Value::MakeDict(std::shared_ptr<const Dict> dict) {
  Value v;
  v.kind_ = Kind::kDict;
  v.ptr_ = std::move(dict);
  return v;
}

Value Value::MakeObject(std::shared_ptr<Object> obj) {
  Value v;
  v.kind_ = Kind::kObject;
  v.ptr_ = std::move(obj);
  return v;
}

const std::string& Value::str() const {
  return *static_cast<const std::string*>(ptr_.get());
}
const List& Value::list() const {
  return *static_cast<const List*>(ptr_.get());
}
const Dict& Value::dict() const {
  return *static_cast<const Dict*>(ptr_.get());
}
Object* Value::object() const {
  return const_cast<Object*>(static_cast<const Object*>(ptr_.get()));
}
std::string Value::undefined_hint() const {
  if (kind_ == Kind::kUndefined && ptr_) return *static_cast<const std::string*>(ptr_.get());
  return "value is undefined";
}

// ---------------------------------------------------------------------------------------------
// Dict

namespace {

// Python hashes 1, 1.0 and True alike; the key string mirrors that.
std::string HashKey(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::kNone: return "n";
    case Value::Kind::kBool:
    case Value::Kind::kInt: return "i" + std::to_string(key.int_value());
    case Value::Kind::kFloat: {
      double d = key.float_value();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) {
        return "i" + std::to_string(static_cast<int64_t>(d));
      }
      return "f" + FormatFloat(d);
    }
    case Value::Kind::kString: return "s" + key.str();
    case Value::Kind::kList:
      if (key.is_tuple()) {
        std::string k = "t(";
        for (const Value& item : key.list()) k += HashKey(item) + "\x1f";
        return k + ")";
      }
      break;
    case Value::Kind::kUndefined: return "u";
    default: break;
  }
  Fail("unhashable type: '" + TypeName(key) + "'");
}

}  // namespace

void Dict::Set(const Value& key, Value value) {
  std::string k = HashKey(key);
  auto it = index_.find(k);
  if (it != index_.end()) {
    items_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(std::move(k), items_.size());
  items_.emplace_back(key, std::move(value));
}

const Value* Dict::Find(const Value& key) const {
  if (key.is_undefined()) return nullptr;
  if (key.is_list() && !key.is_tuple()) return nullptr;
  if (key.is_dict() || key.is_object()) return nullptr;
  auto it = index_.find(HashKey(key));
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

const Value* Dict::FindStr(const std::string& key) const {
  auto it = index_.find("s" + key);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

const Value* CallArgs::Kwarg(std::string_view name) const {
  for (const auto& [k, v] : kwargs) {
    if (k == name) return &v;
  }
  return nullptr;
}

const Value* CallArgs::Get(size_t i, std::string_view name) const {
  if (i < args.size()) return &args[i];
  return Kwarg(name);
}

Value Object::GetAttr(const std::string& name) const {
  return Value::Undefined("'" + TypeName() + " object' has no attribute '" + name + "'");
}

Value Object::Call(Renderer&, CallArgs&) const {
  Fail("'" + TypeName() + "' object is not callable");
}

// ---------------------------------------------------------------------------------------------
// UTF-8

bool IsAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

// Invalid bytes decode to U+DC80..U+DCFF (Python's surrogateescape) so that re-encoding is
// lossless.
std::vector<uint32_t> DecodeUtf8(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                          static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) {
      out.push_back(0xDC00 + static_cast<unsigned char>(s[i]));
      ++i;
    } else {
      out.push_back(static_cast<uint32_t>(cp));
      i += static_cast<size_t>(n);
    }
  }
  return out;
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp >= 0xDC80 && cp <= 0xDCFF) {
    out->push_back(static_cast<char>(cp - 0xDC00));
  } else if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t CodePointCount(std::string_view s) {
  if (IsAscii(s)) return s.size();
  return DecodeUtf8(s).size();
}

// ---------------------------------------------------------------------------------------------
// str / repr

std::string FormatFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: scientific when exp < -4 or exp >= 16.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits.push_back(c);
  }
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return out + eb;
  }
  if (exp < 0) {
    out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else if (static_cast<size_t>(exp + 1) >= digits.size()) {
    out += digits + std::string(static_cast<size_t>(exp + 1) - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, static_cast<size_t>(exp + 1)) + "." +
           digits.substr(static_cast<size_t>(exp + 1));
  }
  return out;
}

namespace {

bool IsPrintable(uint32_t cp) {
  if (cp == ' ') return true;
  if (cp < 0x20 || cp == 0x7F) return false;
  if (cp < 0x7F) return true;
  if (cp >= 0xDC80 && cp <= 0xDCFF) return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return false;
    default: return true;
  }
}

std::string ReprString(const std::string& s) {
  char quote = '\'';
  if (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) quote = '"';
  std::string out(1, quote);
  for (uint32_t cp : DecodeUtf8(s)) {
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (IsPrintable(cp)) {
      AppendUtf8(&out, cp);
    } else {
      char buf[16];
      if (cp < 0x100) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", cp);
      } else if (cp < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", cp);
      }
      out += buf;
    }
  }
  out.push_back(quote);
  return out;
}

}  // namespace

std::string Repr(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString: return ReprString(v.str());
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kList: {
      std::string out = v.is_tuple() ? "(" : "[";
      const List& l = v.list();
      for (size_t i = 0; i < l.size(); ++i) {
        if (i) out += ", ";
        out += Repr(l[i]);
        ScopedReprLimit::Check(out.size());
      }
      if (v.is_tuple() && l.size() == 1) out += ",";
      return out + (v.is_tuple() ? ")" : "]");
    }
    case Value::Kind::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, val] : v.dict().items()) {
        if (!first) out += ", ";
        first = false;
        out += Repr(k) + ": " + Repr(val);
        ScopedReprLimit::Check(out.size());
      }
      return out + "}";
    }
    default: return Str(v);
  }
}

std::string Str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "";
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return v.bool_value() ? "True" : "False";
    case Value::Kind::kInt: return std::to_string(v.int_value());
    case Value::Kind::kFloat: return FormatFloat(v.float_value());
    case Value::Kind::kString: return v.str();
    case Value::Kind::kList:
    case Value::Kind::kDict: return Repr(v);
    case Value::Kind::kObject: return v.object()->Repr();
  }
  return "";
}

bool Truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return false;
    case Value::Kind::kBool: return v.bool_value();
    case Value::Kind::kInt: return v.int_value() != 0;
    case Value::Kind::kFloat: return v.float_value() != 0.0;
    case Value::Kind::kString: return !v.str().empty();
    case Value::Kind::kList: return !v.list().empty();
    case Value::Kind::kDict: return v.dict().size() != 0;
    case Value::Kind::kObject: return v.object()->Truthy();
  }
  return false;
}

std::string TypeName(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNone: return "NoneType";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return "str";
    case Value::Kind::kList: return v.is_tuple() ? "tuple" : "list";
    case Value::Kind::kDict: return "dict";
    case Value::Kind::kObject: return v.object()->TypeName();
  }
  return "object";
}

bool Equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.float_value() == b.float_value();
    return a.int_value() == b.int_value();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.str() == b.str();
    case Value::Kind::kList: {
      if (a.is_tuple() != b.is_tuple()) return false;
      const List& x = a.list();
      const List& y = b.list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!Equals(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      if (a.dict().size() != b.dict().size()) return false;
      for (const auto& [k, v] : a.dict().items()) {
        const Value* other = b.dict().Find(k);
        if (!other || !Equals(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kObject: return a.ptr() == b.ptr();
    default: return false;
  }
}

int Compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.float_value(), y = b.float_value();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    int64_t x = a.int_value(), y = b.int_value();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.str().compare(b.str());  // UTF-8 byte order == code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const List& x = a.list();
    const List& y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!Equals(x[i], y[i])) return Compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.is_undefined() || b.is_undefined()) {
    Fail((a.is_undefined() ? a : b).undefined_hint());
  }
  Fail("'<' not supported between instances of '" + TypeName(a) + "' and '" + TypeName(b) + "'");
}

// ---------------------------------------------------------------------------------------------
// JSON

Value FromJson(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::None();
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(FromJson(e));
      return Value::MakeList(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (const auto& [k, v] : j.items()) d->Set(Value(k), FromJson(v));
      return Value::MakeDict(std::move(d));
    }
    default: return Value::None();  // binary / discarded: not produced by parsers we accept
  }
}

namespace {

void JsonString(const std::string& s, bool ensure_ascii, std::string* out) {
  out->push_back('"');
  auto hex4 = [out](uint32_t u) {
    char buf[16];  // "\\u" + up to 8 hex digits for any uint32_t + NUL
    std::snprintf(buf, sizeof(buf), "\\u%04x", u);
    *out += buf;
  };
  for (uint32_t cp : DecodeUtf8(s)) {
    switch (cp) {
      case '"': *out += "\\\""; continue;
      case '\\': *out += "\\\\"; continue;
      case '\n': *out += "\\n"; continue;
      case '\r': *out += "\\r"; continue;
      case '\t': *out += "\\t"; continue;
      case '\b': *out += "\\b"; continue;
      case '\f': *out += "\\f"; continue;
      default: break;
    }
    if (cp < 0x20) {
      hex4(cp);
    } else if (cp < 0x80 || !ensure_ascii) {
      AppendUtf8(out, cp);
    } else if (cp < 0x10000) {
      hex4(cp);
    } else {
      uint32_t v = cp - 0x10000;
      hex4(0xD800 | (v >> 10));
      hex4(0xDC00 | (v & 0x3FF));
    }
  }
  out->push_back('"');
}

std::string JsonKey(const Value& k) {
  switch (k.kind()) {
    case Value::Kind::kString: return k.str();
    case Value::Kind::kBool: return k.bool_value() ? "true" : "false";
    case Value::Kind::kNone: return "null";
    case Value::Kind::kInt: return std::to_string(k.int_value());
    case Value::Kind::kFloat: return FormatFloat(k.float_value());
    default: Fail("keys must be str, int, float, bool or None, not " + TypeName(k));
  }
}

void JsonDump(const Value& v, const JsonDumpOptions& o, int level, std::string* out) {
  if (level > 512) Fail("tojson: value nested too deeply");
  const bool pretty = o.indent >= 0 || !o.indent_str.empty();
  auto newline = [&](int lvl) {
    out->push_back('\n');
    if (!o.indent_str.empty()) {
      for (int i = 0; i < lvl; ++i) *out += o.indent_str;
    } else {
      out->append(static_cast<size_t>(o.indent) * static_cast<size_t>(lvl), ' ');
    }
  };
  switch (v.kind()) {
    case Value::Kind::kNone: *out += "null"; return;
    case Value::Kind::kBool: *out += v.bool_value() ? "true" : "false"; return;
    case Value::Kind::kInt: *out += std::to_string(v.int_value()); return;
    case Value::Kind::kFloat: {
      double d = v.float_value();
      if (std::isnan(d)) {
        *out += "NaN";
      } else if (std::isinf(d)) {
        *out += d > 0 ? "Infinity" : "-Infinity";
      } else {
        *out += FormatFloat(d);
      }
      return;
    }
    case Value::Kind::kString: JsonString(v.str(), o.ensure_ascii, out); return;
    case Value::Kind::kList: {
      const List& l = v.list();
      if (l.empty()) {
        *out += "[]";
        return;
      }
      out->push_back('[');
      for (size_t i = 0; i < l.size(); ++i) {
        if (i) *out += o.item_sep;
        if (pretty) newline(level + 1);
        JsonDump(l[i], o, level + 1, out);
      }
      if (pretty) newline(level);
      out->push_back(']');
      return;
    }
    case Value::Kind::kDict: {
      if (v.dict().size() == 0) {
        *out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> items;
      for (const auto& [k, val] : v.dict().items()) items.emplace_back(JsonKey(k), &val);
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
      }
      out->push_back('{');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) *out += o.item_sep;
        if (pretty) newline(level + 1);
        JsonString(items[i].first, o.ensure_ascii, out);
        *out += o.key_sep;
        JsonDump(*items[i].second, o, level + 1, out);
      }
      if (pretty) newline(level);
      out->push_back('}');
      return;
    }
    default: Fail("Object of type " + TypeName(v) + " is not JSON serializable");
  }
}

}  // namespace

std::string ToJson(const Value& v, const JsonDumpOptions& options) {
  std::string out;
  JsonDump(v, options, 0, &out);
  return out;
}

}  // namespace tessera::text::jinja
