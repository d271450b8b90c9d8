// Attribute access, operators, Python string/dict/list methods, globals.
// Filters and tests live in filters.cc.
#include <algorithm>
#include <cmath>
#include <ctime>
#include <unordered_set>

#include "interpreter.h"
#include "strings.h"

namespace tessera::text::jinja {
namespace {

std::string ObjectTypeRepr(const Value& v) {
  if (v.is_none()) return "None";
  return TypeName(v) + " object";
}

Value NoAttr(const Value& obj, const std::string& name) {
  return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no attribute '" + name + "'");
}

const std::unordered_set<std::string>& StrMethods() {
  static const std::unordered_set<std::string> k = {
      "strip",        "lstrip",       "rstrip",    "split",      "rsplit",     "startswith",
      "endswith",     "upper",        "lower",     "title",      "capitalize", "replace",
      "find",         "rfind",        "index",     "rindex",     "count",      "join",
      "format",       "splitlines",   "isdigit",   "isalpha",    "isalnum",    "isspace",
      "islower",      "isupper",      "zfill",     "center",     "ljust",      "rjust",
      "removeprefix", "removesuffix", "partition", "rpartition", "swapcase",   "casefold",
      "isnumeric",    "isdecimal",    "istitle"};
  return k;
}
const std::unordered_set<std::string>& DictMethods() {
  static const std::unordered_set<std::string> k = {"get", "items", "keys", "values", "copy"};
  return k;
}
const std::unordered_set<std::string>& ListMethods() {
  static const std::unordered_set<std::string> k = {"index", "count", "copy"};
  return k;
}
bool IsUnsafeMutator(const Value& obj, const std::string& name) {
  static const std::unordered_set<std::string> list_m = {"clear", "extend", "pop",     "remove",
                                                         "sort",  "append", "reverse", "insert"};
  static const std::unordered_set<std::string> dict_m = {"clear", "update", "setdefault", "pop",
                                                         "popitem"};
  if (obj.is_list() && !obj.is_tuple()) return list_m.count(name) > 0;
  if (obj.is_dict()) return dict_m.count(name) > 0;
  return false;
}

Value BoundMethod(const Value& obj, const std::string& name) {
  return Value::MakeObject(
      std::make_shared<NativeFunction>(name, [obj, name](Renderer& r, CallArgs& a) {
        bool found = false;
        return CallMethod(r, obj, name, a, &found);
      }));
}

// Attribute-style lookup of methods, shared by getattr and the getitem fallback.
bool MethodAttr(const Value& obj, const std::string& name, Value* out) {
  if (IsUnsafeMutator(obj, name)) {
    *out = Value::Undefined("access to attribute '" + name + "' of '" + TypeName(obj) +
                            "' object is unsafe.");
    return true;
  }
  bool is_method = (obj.is_string() && StrMethods().count(name)) ||
                   (obj.is_dict() && DictMethods().count(name)) ||
                   (obj.is_list() && ListMethods().count(name));
  if (!is_method) return false;
  *out = BoundMethod(obj, name);
  return true;
}

// An integer argument, as Python requires (bool counts; undefined / str / float do not).
int64_t IntArg(const Value* v, int64_t def, const char* what) {
  if (!v || v->is_none()) return def;
  if (v->is_int() || v->is_bool()) return v->int_value();
  if (v->is_undefined()) Fail(v->undefined_hint());
  Fail("'" + TypeName(*v) + "' object cannot be interpreted as an integer (" + what + ")");
}

int64_t ToIndex(const Value& v, const char* what) {
  if (v.is_int() || v.is_bool()) return v.int_value();
  if (v.is_undefined()) Fail(v.undefined_hint());
  Fail(std::string(what) + " indices must be integers, not " + TypeName(v));
}

}  // namespace

Value GetAttr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) Fail(obj.undefined_hint());
  Value m;
  if (MethodAttr(obj, name, &m)) return m;
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().FindStr(name)) return *v;
    return NoAttr(obj, name);
  }
  if (obj.is_object()) return obj.object()->GetAttr(name);
  return NoAttr(obj, name);
}

Value GetItem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) Fail(obj.undefined_hint());
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().Find(key)) return *v;
  } else if (obj.is_list() && (key.is_int() || key.is_bool())) {
    const List& l = obj.list();
    int64_t i = key.int_value();
    int64_t n = static_cast<int64_t>(l.size());
    if (i < 0) i += n;
    if (i >= 0 && i < n) return l[static_cast<size_t>(i)];
    return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no element " + Str(key));
  } else if (obj.is_string() && (key.is_int() || key.is_bool())) {
    std::vector<uint32_t> cps = DecodeUtf8(obj.str());
    int64_t i = key.int_value();
    int64_t n = static_cast<int64_t>(cps.size());
    if (i < 0) i += n;
    if (i >= 0 && i < n) {
      std::string s;
      AppendUtf8(&s, cps[static_cast<size_t>(i)]);
      return Value(std::move(s));
    }
    return Value::Undefined("'str object' has no element " + Str(key));
  } else if (obj.is_object() && key.is_string()) {
    return obj.object()->GetAttr(key.str());
  }
  if (key.is_string()) {
    Value m;
    if (MethodAttr(obj, key.str(), &m)) return m;
    return NoAttr(obj, key.str());
  }
  // An undefined key is hashable in Python (a failed lookup, not an error).
  return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no element " + Repr(key));
}

Value Slice(Renderer& r, const Value& obj, const Value& start, const Value& stop,
            const Value& step) {
  if (obj.is_undefined()) Fail(obj.undefined_hint());
  if (!obj.is_list() && !obj.is_string())
    return Value::Undefined("'" + ObjectTypeRepr(obj) + "' is not sliceable");
  int64_t st = step.is_none() ? 1 : ToIndex(step, "slice");
  if (st == 0) Fail("slice step cannot be zero");
  std::vector<uint32_t> cps;
  int64_t n;
  if (obj.is_string()) {
    cps = DecodeUtf8(obj.str());
    n = static_cast<int64_t>(cps.size());
  } else {
    n = static_cast<int64_t>(obj.list().size());
  }
  auto clamp = [&](const Value& v, int64_t def, bool is_start) {
    if (v.is_none()) return def;
    int64_t i = ToIndex(v, "slice");
    if (i < 0) i += n;
    if (st > 0) return std::clamp<int64_t>(i, 0, n);
    (void)is_start;
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  int64_t a = clamp(start, st > 0 ? 0 : n - 1, true);
  int64_t b = clamp(stop, st > 0 ? n : -1, false);
  std::vector<int64_t> idx;
  for (int64_t i = a; st > 0 ? i < b : i > b; i += st) idx.push_back(i);
  r.CountWork(static_cast<int64_t>(idx.size()) / 64);
  if (obj.is_string()) {
    std::string s;
    for (int64_t i : idx) AppendUtf8(&s, cps[static_cast<size_t>(i)]);
    return Value(std::move(s));
  }
  List out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(obj.list()[static_cast<size_t>(i)]);
  return Value::MakeList(std::move(out), obj.is_tuple());
}

List Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: return v.list();
    case Value::Kind::kDict: {
      List keys;
      for (const auto& kv : v.dict().items()) keys.push_back(kv.first);
      return keys;
    }
    case Value::Kind::kString: {
      List chars;
      for (uint32_t cp : DecodeUtf8(v.str())) {
        std::string s;
        AppendUtf8(&s, cp);
        chars.emplace_back(std::move(s));
      }
      return chars;
    }
    default: Fail("'" + TypeName(v) + "' object is not iterable");
  }
}

bool Contains(Renderer& r, const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        if (item.is_undefined()) Fail(item.undefined_hint());
        Fail("'in <string>' requires string as left operand, not " + TypeName(item));
      }
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
      r.CountWork(static_cast<int64_t>(container.list().size()) / 16);
      for (const Value& v : container.list()) {
        if (Equals(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict: return container.dict().Find(item) != nullptr;
    default: Fail("argument of type '" + TypeName(container) + "' is not iterable");
  }
}

// ---- operators ------------------------------------------------------------------------------

namespace {

int64_t AddChecked(int64_t a, int64_t b) {
  int64_t v;
  if (__builtin_add_overflow(a, b, &v)) Fail("integer overflow");
  return v;
}
int64_t SubChecked(int64_t a, int64_t b) {
  int64_t v;
  if (__builtin_sub_overflow(a, b, &v)) Fail("integer overflow");
  return v;
}
int64_t MulChecked(int64_t a, int64_t b) {
  int64_t v;
  if (__builtin_mul_overflow(a, b, &v)) Fail("integer overflow");
  return v;
}

Value Repeat(Renderer& r, const Value& seq, int64_t times) {
  if (times < 0) times = 0;
  if (seq.is_string()) {
    const std::string& s = seq.str();
    if (!s.empty() && static_cast<uint64_t>(times) > r.limits().max_output_bytes / s.size()) {
      FailLimit("string repetition exceeds max_output_bytes");
    }
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += s;
    return Value(std::move(out));
  }
  const List& l = seq.list();
  if (!l.empty()) r.CountWork(times * static_cast<int64_t>(l.size()));
  List out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), l.begin(), l.end());
  return Value::MakeList(std::move(out), seq.is_tuple());
}

double FloorMod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

Value IntPow(int64_t base, int64_t exp) {
  if (exp < 0) return Value(std::pow(static_cast<double>(base), static_cast<double>(exp)));
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) result = MulChecked(result, base);
    exp >>= 1;
    if (exp) base = MulChecked(base, base);
  }
  return Value(result);
}

[[noreturn]] void Unsupported(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) Fail(a.undefined_hint());
  if (b.is_undefined()) Fail(b.undefined_hint());
  if (op == "+" && a.is_string())
    Fail("can only concatenate str (not \"" + TypeName(b) + "\") to str");
  Fail("unsupported operand type(s) for " + op + ": '" + TypeName(a) + "' and '" + TypeName(b) +
       "'");
}

}  // namespace

Value BinaryOp(Renderer& r, const std::string& op, const Value& a, const Value& b) {
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && !a.is_float() && !b.is_float();
  if (op == "+") {
    if (ints) return Value(AddChecked(a.int_value(), b.int_value()));
    if (nums) return Value(a.float_value() + b.float_value());
    if (a.is_string() && b.is_string()) {
      r.CheckSize(a.str().size() + b.str().size());
      return Value(a.str() + b.str());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      r.CountWork(static_cast<int64_t>(a.list().size() + b.list().size()) / 16);
      List out = a.list();
      out.insert(out.end(), b.list().begin(), b.list().end());
      return Value::MakeList(std::move(out), a.is_tuple());
    }
    Unsupported(op, a, b);
  }
  if (op == "-") {
    if (ints) return Value(SubChecked(a.int_value(), b.int_value()));
    if (nums) return Value(a.float_value() - b.float_value());
    Unsupported(op, a, b);
  }
  if (op == "*") {
    if (ints) return Value(MulChecked(a.int_value(), b.int_value()));
    if (nums) return Value(a.float_value() * b.float_value());
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool()))
      return Repeat(r, a, b.int_value());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool()))
      return Repeat(r, b, a.int_value());
    Unsupported(op, a, b);
  }
  if (op == "/") {
    if (!nums) Unsupported(op, a, b);
    if (b.float_value() == 0) Fail("division by zero");
    return Value(a.float_value() / b.float_value());
  }
  if (op == "//") {
    if (!nums) Unsupported(op, a, b);
    if (b.float_value() == 0) Fail("integer division or modulo by zero");
    if (ints) {
      int64_t x = a.int_value(), y = b.int_value();
      if (x == INT64_MIN && y == -1) Fail("integer overflow");
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return Value(q);
    }
    return Value(std::floor(a.float_value() / b.float_value()));
  }
  if (op == "%") {
    if (a.is_string()) return Value(PercentFormat(r, a.str(), b));
    if (!nums) Unsupported(op, a, b);
    if (b.float_value() == 0) Fail("integer division or modulo by zero");
    if (ints) {
      int64_t x = a.int_value(), y = b.int_value();
      if (y == -1) return Value(int64_t{0});
      int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value(m);
    }
    return Value(FloorMod(a.float_value(), b.float_value()));
  }
  if (op == "**") {
    if (ints) return IntPow(a.int_value(), b.int_value());
    if (nums) return Value(std::pow(a.float_value(), b.float_value()));
    Unsupported(op, a, b);
  }
  Fail("unknown operator " + op);
}

// ---- methods --------------------------------------------------------------------------------

namespace {

std::string ArgStr(const CallArgs& a, size_t i, const char* name, const char* method) {
  const Value* v = a.Get(i, name);
  if (!v) Fail(std::string(method) + "() missing required argument '" + name + "'");
  if (!v->is_string()) Fail(std::string(method) + "() argument must be str, not " + TypeName(*v));
  return v->str();
}

bool PrefixMatch(const Value& arg, const std::string& s, bool suffix) {
  auto one = [&](const Value& p) {
    if (!p.is_string()) Fail("startswith/endswith first arg must be str or a tuple of str");
    const std::string& x = p.str();
    if (x.size() > s.size()) return false;
    return suffix ? s.compare(s.size() - x.size(), x.size(), x) == 0
                  : s.compare(0, x.size(), x) == 0;
  };
  if (arg.is_list()) {
    for (const Value& p : arg.list()) {
      if (one(p)) return true;
    }
    return false;
  }
  return one(arg);
}

Value StrMethod(Renderer& r, const std::string& s, const std::string& name, CallArgs& a) {
  auto chars_arg = [&](size_t i) -> const Value* {
    const Value* c = a.Get(i, "chars");
    return (c && !c->is_none()) ? c : nullptr;
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const Value* c = chars_arg(0);
    if (c && !c->is_string()) Fail(name + " arg must be None or str");
    return Value(PyStrip(s, c ? &c->str() : nullptr, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    const Value* sep = a.Get(0, "sep");
    int64_t maxsplit = IntArg(a.Get(1, "maxsplit"), -1, "maxsplit");
    std::vector<std::string> parts;
    if (!sep || sep->is_none()) {
      parts = PySplitWhitespace(s, maxsplit, name == "rsplit");
    } else {
      if (!sep->is_string()) Fail("must be str or None, not " + TypeName(*sep));
      if (sep->str().empty()) Fail("empty separator");
      parts = PySplit(s, sep->str(), maxsplit, name == "rsplit");
    }
    r.CountWork(static_cast<int64_t>(parts.size()) / 16);
    List out;
    for (auto& p : parts) out.emplace_back(std::move(p));
    return Value::MakeList(std::move(out));
  }
  if (name == "startswith" || name == "endswith") {
    const Value* p = a.Get(0, "prefix");
    if (!p) Fail(name + "() takes at least 1 argument");
    return Value(PrefixMatch(*p, s, name == "endswith"));
  }
  if (name == "upper") return Value(PyUpper(s));
  if (name == "lower" || name == "casefold") return Value(PyLower(s));
  if (name == "title") return Value(PyTitle(s));
  if (name == "capitalize") return Value(PyCapitalize(s));
  if (name == "swapcase") return Value(PySwapcase(s));
  if (name == "replace") {
    std::string from = ArgStr(a, 0, "old", "replace"), to = ArgStr(a, 1, "new", "replace");
    return Value(PyReplace(r, s, from, to, IntArg(a.Get(2, "count"), -1, "count")));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    std::string sub = ArgStr(a, 0, "sub", name.c_str());
    size_t pos = (name[0] == 'r') ? s.rfind(sub) : s.find(sub);
    if (pos == std::string::npos) {
      if (name.find("index") != std::string::npos) Fail("substring not found");
      return Value(int64_t{-1});
    }
    return Value(static_cast<int64_t>(CodePointCount(std::string_view(s).substr(0, pos))));
  }
  if (name == "count") {
    std::string sub = ArgStr(a, 0, "sub", "count");
    if (sub.empty()) return Value(static_cast<int64_t>(CodePointCount(s) + 1));
    int64_t n = 0;
    for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
    return Value(n);
  }
  if (name == "join") {
    const Value* it = a.Get(0, "iterable");
    if (!it) Fail("join() takes exactly one argument");
    std::string out;
    List items = Iterate(*it);
    r.CountWork(static_cast<int64_t>(items.size()) / 16);
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string())
        Fail("sequence item " + std::to_string(i) + ": expected str instance, " +
             TypeName(items[i]) + " found");
      if (i) out += s;
      out += items[i].str();
      r.CheckSize(out.size());
    }
    return Value(std::move(out));
  }
  if (name == "format") return Value(PyFormat(r, s, a));
  if (name == "splitlines") {
    List out;
    for (auto& l : PySplitLines(s, a.args.size() > 0 && Truthy(a.args[0])))
      out.emplace_back(std::move(l));
    return Value::MakeList(std::move(out));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    std::string x = ArgStr(a, 0, "prefix", name.c_str());
    bool suffix = name == "removesuffix";
    if (x.size() <= s.size() && (suffix ? s.compare(s.size() - x.size(), x.size(), x) == 0
                                        : s.compare(0, x.size(), x) == 0)) {
      return Value(suffix ? s.substr(0, s.size() - x.size()) : s.substr(x.size()));
    }
    return Value(s);
  }
  if (name == "partition" || name == "rpartition") {
    std::string sep = ArgStr(a, 0, "sep", name.c_str());
    if (sep.empty()) Fail("empty separator");
    size_t p = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (p == std::string::npos) {
      return name == "partition" ? Value::MakeList({Value(s), Value(""), Value("")}, true)
                                 : Value::MakeList({Value(""), Value(""), Value(s)}, true);
    }
    return Value::MakeList({Value(s.substr(0, p)), Value(sep), Value(s.substr(p + sep.size()))},
                           true);
  }
  if (name == "zfill" || name == "center" || name == "ljust" || name == "rjust") {
    const Value* w = a.Get(0, "width");
    if (!w || !(w->is_int() || w->is_bool())) Fail(name + "() requires an integer width");
    if (w->int_value() > static_cast<int64_t>(r.limits().max_output_bytes))
      FailLimit("width too large");
    std::string fill = " ";
    if (const Value* f = a.Get(1, "fillchar")) fill = f->is_string() ? f->str() : " ";
    return Value(PyPad(s, name, w->int_value(), fill));
  }
  return Value(PyStrPredicate(s, name));
}

Value DictMethod(Renderer& r, const Value& d, const std::string& name, CallArgs& a) {
  const Dict& dict = d.dict();
  if (name == "get") {
    const Value* key = a.Get(0, "key");
    if (!key) Fail("get expected at least 1 argument, got 0");
    if (const Value* v = dict.Find(*key)) return *v;
    const Value* def = a.Get(1, "default");
    return def ? *def : Value::None();
  }
  if (name == "copy") return d;
  r.CountWork(static_cast<int64_t>(dict.size()) / 16);
  List out;
  for (const auto& [k, v] : dict.items()) {
    if (name == "keys") {
      out.push_back(k);
    } else if (name == "values") {
      out.push_back(v);
    } else {
      out.push_back(Value::MakeList({k, v}, true));
    }
  }
  return Value::MakeList(std::move(out));
}

Value ListMethod(Renderer& r, const Value& l, const std::string& name, CallArgs& a) {
  if (name == "copy") return Value::MakeList(l.list(), l.is_tuple());
  const Value* x = a.Get(0, "value");
  if (!x) Fail(name + "() takes exactly one argument");
  r.CountWork(static_cast<int64_t>(l.list().size()) / 16);
  int64_t count = 0;
  for (size_t i = 0; i < l.list().size(); ++i) {
    if (!Equals(l.list()[i], *x)) continue;
    if (name == "index") return Value(static_cast<int64_t>(i));
    ++count;
  }
  if (name == "index") Fail(Repr(*x) + " is not in list");
  return Value(count);
}

}  // namespace

Value CallMethod(Renderer& r, const Value& obj, const std::string& name, CallArgs& args,
                 bool* found) {
  *found = true;
  if (IsUnsafeMutator(obj, name)) {
    Fail("access to attribute '" + name + "' of '" + TypeName(obj) + "' object is unsafe.");
  }
  if (obj.is_string() && StrMethods().count(name)) return StrMethod(r, obj.str(), name, args);
  if (obj.is_dict() && DictMethods().count(name)) return DictMethod(r, obj, name, args);
  if (obj.is_list() && ListMethods().count(name)) return ListMethod(r, obj, name, args);
  *found = false;
  return Value();
}

// ---- globals --------------------------------------------------------------------------------

namespace {

// The sandbox refuses ranges longer than this (jinja2.sandbox.MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

Value Range(Renderer& r, CallArgs& a) {
  if (!a.kwargs.empty()) Fail("range() takes no keyword arguments");
  std::vector<int64_t> p;
  for (const Value& v : a.args) {
    if (!(v.is_int() || v.is_bool())) {
      if (v.is_undefined()) Fail(v.undefined_hint());
      Fail("'" + TypeName(v) + "' object cannot be interpreted as an integer");
    }
    p.push_back(v.int_value());
  }
  if (p.empty() || p.size() > 3)
    Fail("range expected 1 to 3 arguments, got " + std::to_string(p.size()));
  int64_t start = p.size() == 1 ? 0 : p[0];
  int64_t stop = p.size() == 1 ? p[0] : p[1];
  int64_t step = p.size() == 3 ? p[2] : 1;
  if (step == 0) Fail("range() arg 3 must not be zero");
  long double len = step > 0 ? std::ceil(((long double)stop - start) / step)
                             : std::ceil(((long double)start - stop) / -(long double)step);
  if (len < 0) len = 0;
  if (len > kMaxRange) {
    Fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  }
  r.CountWork(static_cast<int64_t>(len) / 16);
  List out;
  for (int64_t i = 0; i < static_cast<int64_t>(len); ++i) out.emplace_back(start + i * step);
  return Value::MakeList(std::move(out));
}

class Cycler : public Object {
 public:
  explicit Cycler(List items) : items_(std::move(items)) {}
  std::string TypeName() const override { return "Cycler"; }
  Value GetAttr(const std::string& name) const override {
    if (name == "current") return items_.empty() ? Value::None() : items_[pos_];
    if (name == "next") {
      auto self = std::static_pointer_cast<const Cycler>(shared_from_this());
      return Value::MakeObject(
          std::make_shared<NativeFunction>("next", [self](Renderer&, CallArgs&) {
            if (self->items_.empty()) Fail("cycler has no items");
            Value v = self->items_[self->pos_];
            self->pos_ = (self->pos_ + 1) % self->items_.size();
            return v;
          }));
    }
    if (name == "reset") {
      auto self = std::static_pointer_cast<const Cycler>(shared_from_this());
      return Value::MakeObject(
          std::make_shared<NativeFunction>("reset", [self](Renderer&, CallArgs&) {
            self->pos_ = 0;
            return Value::None();
          }));
    }
    return Object::GetAttr(name);
  }

 private:
  List items_;
  mutable size_t pos_ = 0;
};

class Joiner : public Object {
 public:
  explicit Joiner(std::string sep) : sep_(std::move(sep)) {}
  std::string TypeName() const override { return "Joiner"; }
  bool IsCallable() const override { return true; }
  Value Call(Renderer&, CallArgs&) const override {
    if (!used_) {
      used_ = true;
      return Value("");
    }
    return Value(sep_);
  }

 private:
  std::string sep_;
  mutable bool used_ = false;
};

Value StrftimeNow(Renderer& r, CallArgs& a) {
  const Value* fmt = a.Get(0, "format");
  if (!fmt || !fmt->is_string()) Fail("strftime_now() expects a format string");
  std::time_t now;
  std::tm tm{};
  if (r.options().fixed_now_unix_seconds) {
    now = static_cast<std::time_t>(*r.options().fixed_now_unix_seconds);
    gmtime_r(&now, &tm);
  } else {
    now = std::time(nullptr);
    localtime_r(&now, &tm);
  }
  if (fmt->str().size() > 256) Fail("strftime_now(): format too long");
  char buf[1024];
  size_t n = std::strftime(buf, sizeof(buf), fmt->str().c_str(), &tm);
  return Value(std::string(buf, n));
}

Value MakeFn(const char* name, NativeFunction::Fn fn) {
  return Value::MakeObject(std::make_shared<NativeFunction>(name, std::move(fn)));
}

}  // namespace

void AddGlobals(std::unordered_map<std::string, Value>* g) {
  (*g)["range"] = MakeFn("range", Range);
  (*g)["namespace"] = MakeFn("namespace", [](Renderer& r, CallArgs& a) {
    auto ns = std::make_shared<Namespace>();
    r.TrackNamespace(ns);
    for (const Value& v : a.args) {
      if (!v.is_dict()) Fail("namespace() positional argument must be a mapping");
      for (const auto& [k, val] : v.dict().items()) ns->SetAttr(Str(k), val);
    }
    for (const auto& [k, v] : a.kwargs) ns->SetAttr(k, v);
    return Value::MakeObject(ns);
  });
  (*g)["dict"] = MakeFn("dict", [](Renderer&, CallArgs& a) {
    auto d = std::make_shared<Dict>();
    for (const Value& v : a.args) {
      if (!v.is_dict()) Fail("dict() positional argument must be a mapping");
      for (const auto& [k, val] : v.dict().items()) d->Set(k, val);
    }
    for (const auto& [k, v] : a.kwargs) d->Set(Value(k), v);
    return Value::MakeDict(d);
  });
  (*g)["cycler"] = MakeFn("cycler", [](Renderer&, CallArgs& a) {
    return Value::MakeObject(std::make_shared<Cycler>(a.args));
  });
  (*g)["joiner"] = MakeFn("joiner", [](Renderer&, CallArgs& a) {
    const Value* sep = a.Get(0, "sep");
    return Value::MakeObject(std::make_shared<Joiner>(sep ? Str(*sep) : ", "));
  });
  (*g)["raise_exception"] = MakeFn("raise_exception", [](Renderer&, CallArgs& a) -> Value {
    const Value* msg = a.Get(0, "message");
    throw JinjaError(StatusCode::kInvalidArgument, msg ? Str(*msg) : "");
  });
  (*g)["strftime_now"] = MakeFn("strftime_now", StrftimeNow);
}

}  // namespace tessera::text::jinja
