// Value: the interpreter's model of a Python object (None, bool, int, float, str, list/tuple,
// dict, and a few host objects: namespace, loop, macro, bound method...).
//
// Lists and dicts are immutable once built (the sandbox forbids mutating them), so they are
// shared by pointer and copied cheaply. Only Namespace objects are mutable.
#ifndef TESSERA_TEXT_JINJA_SRC_VALUE_H_
#define TESSERA_TEXT_JINJA_SRC_VALUE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tessera/core/status.h"

namespace tessera::text::jinja {

// Template errors travel as this exception inside the interpreter only; the public API catches it
// and returns a Status. Exceptions keep the deeply recursive evaluator readable; none escapes the
// library.
class JinjaError {
 public:
  JinjaError(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_;
  std::string message_;
};

[[noreturn]] void Fail(std::string message);       // kInvalidArgument
[[noreturn]] void FailLimit(std::string message);  // kResourceExhausted

// The longest text Repr / Str may build for one value while it is in scope (a render's
// max_output_bytes): past it they fail with kResourceExhausted instead of building the rest (a
// list nested 2^n times in n steps has an n-step repr too long for any memory).
class ScopedReprLimit {
 public:
  explicit ScopedReprLimit(size_t bytes);
  ~ScopedReprLimit();
  ScopedReprLimit(const ScopedReprLimit&) = delete;
  ScopedReprLimit& operator=(const ScopedReprLimit&) = delete;
  static void Check(size_t bytes);  // FailLimit when bytes is over the limit in scope

 private:
  size_t saved_;
};

class Value;
class Dict;
class Object;
class Renderer;
using List = std::vector<Value>;

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kObject
  };

  Value() = default;                               // undefined
  Value(bool b) : kind_(Kind::kBool), b_(b) {}     // NOLINT
  Value(int64_t i) : kind_(Kind::kInt), i_(i) {}   // NOLINT
  Value(int i) : kind_(Kind::kInt), i_(i) {}       // NOLINT
  Value(double f) : kind_(Kind::kFloat), f_(f) {}  // NOLINT
  Value(std::string s);                            // NOLINT
  Value(const char* s) : Value(std::string(s)) {}  // NOLINT
  static Value Undefined(std::string hint);
  static Value None() {
    Value v;
    v.kind_ = Kind::kNone;
    return v;
  }
  static Value MakeList(List items, bool tuple = false);
  static Value MakeDict(std::shared_ptr<const Dict> dict);
  static Value MakeObject(std::shared_ptr<Object> obj);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && tuple_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_object() const { return kind_ == Kind::kObject; }

  bool bool_value() const { return b_; }
  int64_t int_value() const { return is_bool() ? (b_ ? 1 : 0) : i_; }
  double float_value() const { return is_float() ? f_ : static_cast<double>(int_value()); }
  const std::string& str() const;  // REQUIRES: is_string()
  const List& list() const;        // REQUIRES: is_list()
  const Dict& dict() const;        // REQUIRES: is_dict()
  Object* object() const;          // REQUIRES: is_object()
  const std::shared_ptr<const void>& ptr() const { return ptr_; }
  // Why an undefined value is undefined ("'x' is undefined"), for error messages.
  std::string undefined_hint() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool tuple_ = false;
  union {
    bool b_;
    int64_t i_ = 0;
    double f_;
  };
  // kString: std::string; kList: List; kDict: Dict; kObject: Object; kUndefined: hint string.
  std::shared_ptr<const void> ptr_;
};

// An insertion-ordered dict, as Python's.
class Dict {
 public:
  void Set(const Value& key, Value value);
  const Value* Find(const Value& key) const;
  const Value* FindStr(const std::string& key) const;
  const std::vector<std::pair<Value, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<Value, Value>> items_;
  std::unordered_map<std::string, size_t> index_;
};

struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
  const Value* Kwarg(std::string_view name) const;
  // Positional i, else keyword `name`, else nullptr.
  const Value* Get(size_t i, std::string_view name) const;
};

// Host objects.
class Object : public std::enable_shared_from_this<Object> {
 public:
  virtual ~Object() = default;
  virtual std::string TypeName() const = 0;
  virtual Value GetAttr(const std::string& name) const;
  virtual bool IsCallable() const { return false; }
  virtual Value Call(Renderer& r, CallArgs& args) const;
  virtual std::string Repr() const { return "<" + TypeName() + " object>"; }
  virtual bool Truthy() const { return true; }
};

// Python's str(), repr(), bool() and == for values.
std::string Str(const Value& v);
std::string Repr(const Value& v);
bool Truthy(const Value& v);
bool Equals(const Value& a, const Value& b);
// <0, 0, >0; fails with a TypeError-like message when Python would.
int Compare(const Value& a, const Value& b);
std::string TypeName(const Value& v);  // Python's type name: 'str', 'int', 'dict', ...
std::string FormatFloat(double d);     // Python's repr(float)

// JSON conversions.
Value FromJson(const nlohmann::ordered_json& j);
struct JsonDumpOptions {
  bool ensure_ascii = false;
  int indent = -1;              // -1: None
  std::string indent_str;       // used when indent came as a string
  std::string item_sep = ", ";  // Python's defaults depend on indent; the caller resolves them
  std::string key_sep = ": ";
  bool sort_keys = false;
};
std::string ToJson(const Value& v, const JsonDumpOptions& options);

// UTF-8 helpers: Python strings index by code point.
bool IsAscii(std::string_view s);
std::vector<uint32_t> DecodeUtf8(std::string_view s);
void AppendUtf8(std::string* out, uint32_t cp);
size_t CodePointCount(std::string_view s);

}  // namespace tessera::text::jinja

#endif  // TESSERA_TEXT_JINJA_SRC_VALUE_H_
