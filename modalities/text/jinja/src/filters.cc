// jinja2's builtin filters and tests (the subset chat templates use), with transformers' tojson.
#include <algorithm>
#include <cerrno>
#include <cfenv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "interpreter.h"
#include "strings.h"

namespace tessera::text::jinja {
namespace {

using FilterFn = std::function<Value(Renderer&, const Value&, CallArgs&)>;
using TestFn = std::function<bool(Renderer&, const Value&, CallArgs&)>;

bool BoolArg(const CallArgs& a, size_t i, const char* name, bool def) {
  const Value* v = a.Get(i, name);
  return v ? Truthy(*v) : def;
}

// An integer parameter, strict as Python: bool counts, undefined / str / float fail.
int64_t IntParam(const Value* v, int64_t def, const char* what) {
  if (!v || v->is_none()) return def;
  if (v->is_int() || v->is_bool()) return v->int_value();
  if (v->is_undefined()) Fail(v->undefined_hint());
  Fail("'" + TypeName(*v) + "' object cannot be interpreted as an integer (" + what + ")");
}

// Filters see str(value) for undefined as "" (jinja2's soft_str), except where they fail.
std::string SoftStr(const Value& v) {
  return Str(v);
}

// `attribute="a.b.0"` lookups (jinja2's make_attrgetter: getitem per dotted part).
Value AttrPath(const Value& v, const Value& path) {
  if (!path.is_string()) return GetItem(v, path);
  Value cur = v;
  size_t start = 0;
  const std::string& p = path.str();
  while (true) {
    size_t dot = p.find('.', start);
    std::string part = p.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                               [](char c) { return c >= '0' && c <= '9'; });
    cur = digits ? GetItem(cur, Value(static_cast<int64_t>(std::stoll(part))))
                 : GetItem(cur, Value(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

Value IgnoreCase(const Value& v) {
  return v.is_string() ? Value(PyLower(v.str())) : v;
}

List CheckedIterate(Renderer& r, const Value& v) {
  List items = Iterate(v);
  r.CountWork(static_cast<int64_t>(items.size()) / 4);
  return items;
}

Value ToJsonFilter(Renderer&, const Value& v, CallArgs& a) {
  JsonDumpOptions o;
  if (const Value* ea = a.Get(0, "ensure_ascii")) o.ensure_ascii = Truthy(*ea);
  // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
  const Value* indent = a.Get(1, "indent");
  if (indent && !indent->is_none()) {
    if (indent->is_string()) {
      o.indent_str = indent->str();
      o.indent = 0;
    } else {
      o.indent = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(indent->int_value(), 64)));
    }
    o.item_sep = ",";
  }
  if (const Value* seps = a.Get(2, "separators"); seps && !seps->is_none()) {
    if (!seps->is_list() || seps->list().size() != 2) Fail("separators must be a (item, key) pair");
    o.item_sep = Str(seps->list()[0]);
    o.key_sep = Str(seps->list()[1]);
  }
  if (const Value* sk = a.Get(3, "sort_keys")) o.sort_keys = Truthy(*sk);
  if (v.is_undefined()) Fail("Object of type Undefined is not JSON serializable");
  return Value(ToJson(v, o));
}

Value SortFilter(Renderer& r, const Value& v, CallArgs& a) {
  bool reverse = BoolArg(a, 0, "reverse", false);
  bool case_sensitive = BoolArg(a, 1, "case_sensitive", false);
  const Value* attr = a.Get(2, "attribute");
  List items = CheckedIterate(r, v);
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& it : items) {
    Value key = attr && !attr->is_none() ? AttrPath(it, *attr) : it;
    if (!case_sensitive) key = IgnoreCase(key);
    keyed.emplace_back(std::move(key), std::move(it));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? Compare(y.first, x.first) < 0 : Compare(x.first, y.first) < 0;
  });
  List out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::MakeList(std::move(out));
}

Value DictSortFilter(Renderer& r, const Value& v, CallArgs& a) {
  if (!v.is_dict()) Fail("dictsort requires a mapping");
  bool case_sensitive = BoolArg(a, 0, "case_sensitive", false);
  const Value* by = a.Get(1, "by");
  bool by_value = by && Str(*by) == "value";
  if (by && !by_value && Str(*by) != "key")
    Fail("You can only sort by either \"key\" or \"value\"");
  bool reverse = BoolArg(a, 2, "reverse", false);
  r.CountWork(static_cast<int64_t>(v.dict().size()) / 4);
  std::vector<std::pair<Value, Value>> items = v.dict().items();
  std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
    Value kx = by_value ? x.second : x.first, ky = by_value ? y.second : y.first;
    if (!case_sensitive) {
      kx = IgnoreCase(kx);
      ky = IgnoreCase(ky);
    }
    return reverse ? Compare(ky, kx) < 0 : Compare(kx, ky) < 0;
  });
  List out;
  for (auto& [k, val] : items) out.push_back(Value::MakeList({k, val}, true));
  return Value::MakeList(std::move(out));
}

Value MinMax(Renderer& r, const Value& v, CallArgs& a, bool want_max) {
  bool case_sensitive = BoolArg(a, 0, "case_sensitive", false);
  const Value* attr = a.Get(1, "attribute");
  List items = CheckedIterate(r, v);
  if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  auto key = [&](const Value& x) {
    Value k = attr && !attr->is_none() ? AttrPath(x, *attr) : x;
    return case_sensitive ? k : IgnoreCase(k);
  };
  for (size_t i = 1; i < items.size(); ++i) {
    int c = Compare(key(items[i]), key(items[best]));
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}

Value UniqueFilter(Renderer& r, const Value& v, CallArgs& a) {
  bool case_sensitive = BoolArg(a, 0, "case_sensitive", false);
  const Value* attr = a.Get(1, "attribute");
  List out, seen;
  for (Value& it : CheckedIterate(r, v)) {
    Value k = attr && !attr->is_none() ? AttrPath(it, *attr) : it;
    if (!case_sensitive) k = IgnoreCase(k);
    bool dup = false;
    for (const Value& s : seen) dup = dup || Equals(s, k);
    r.CountWork(static_cast<int64_t>(seen.size()) / 16);
    if (dup) continue;
    seen.push_back(k);
    out.push_back(std::move(it));
  }
  return Value::MakeList(std::move(out));
}

Value MapFilter(Renderer& r, const Value& v, CallArgs& a) {
  List items = CheckedIterate(r, v);
  List out;
  if (const Value* attr = a.Kwarg("attribute")) {
    const Value* def = a.Kwarg("default");
    for (const Value& it : items) {
      Value x = AttrPath(it, *attr);
      out.push_back(x.is_undefined() && def ? *def : x);
    }
    return Value::MakeList(std::move(out));
  }
  if (a.args.empty()) return Value::MakeList(std::move(items));
  std::string name = Str(a.args[0]);
  CallArgs rest;
  rest.args.assign(a.args.begin() + 1, a.args.end());
  rest.kwargs = a.kwargs;
  for (const Value& it : items) {
    CallArgs copy = rest;
    out.push_back(ApplyFilter(r, name, it, copy));
  }
  return Value::MakeList(std::move(out));
}

// select / reject / selectattr / rejectattr.
Value SelectFilter(Renderer& r, const Value& v, CallArgs& a, bool keep, bool by_attr) {
  size_t first = 0;
  Value attr;
  if (by_attr) {
    if (a.args.empty()) Fail("Missing parameter for attribute name");
    attr = a.args[0];
    first = 1;
  }
  std::string test;
  CallArgs targs;
  if (a.args.size() > first) {
    test = Str(a.args[first]);
    targs.args.assign(a.args.begin() + static_cast<long>(first) + 1, a.args.end());
    targs.kwargs = a.kwargs;
  }
  List out;
  for (Value& it : CheckedIterate(r, v)) {
    Value x = by_attr ? AttrPath(it, attr) : it;
    bool ok;
    if (test.empty()) {
      ok = Truthy(x);
    } else {
      CallArgs copy = targs;
      ok = ApplyTest(r, test, x, copy);
    }
    if (ok == keep) out.push_back(std::move(it));
  }
  return Value::MakeList(std::move(out));
}

Value IntFilter(const Value& v, CallArgs& a) {
  const Value* defv = a.Get(0, "default");
  Value def = defv ? *defv : Value(int64_t{0});
  const Value* basev = a.Get(1, "base");
  int base = basev ? static_cast<int>(basev->int_value()) : 10;
  if (v.is_int() || v.is_bool()) return Value(v.int_value());
  if (v.is_float()) {
    double d = v.float_value();
    if (!std::isfinite(d) || std::fabs(d) > 9.2e18) return def;
    return Value(static_cast<int64_t>(d));
  }
  if (v.is_undefined()) Fail(v.undefined_hint());
  if (!v.is_string()) return def;
  std::string s = PyStrip(v.str(), nullptr, true, true);
  std::string digits;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() &&
        std::isalnum(static_cast<unsigned char>(s[i - 1])) &&
        std::isalnum(static_cast<unsigned char>(s[i + 1]))) {
      continue;
    }
    digits.push_back(s[i]);
  }
  if (!digits.empty() && base >= 2 && base <= 36) {
    errno = 0;
    char* end = nullptr;
    long long x = std::strtoll(digits.c_str(), &end, base);
    if (errno == 0 && end && *end == '\0' && !std::isspace(static_cast<unsigned char>(digits[0]))) {
      return Value(static_cast<int64_t>(x));
    }
  }
  // int(float(s)) fallback
  errno = 0;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (!s.empty() && end && *end == '\0' && errno == 0 && std::isfinite(d) &&
      std::fabs(d) < 9.2e18 && s.find_first_of("xXpP") == std::string::npos) {
    return Value(static_cast<int64_t>(d));
  }
  return def;
}

Value FloatFilter(const Value& v, CallArgs& a) {
  const Value* defv = a.Get(0, "default");
  Value def = defv ? *defv : Value(0.0);
  if (v.is_number()) return Value(v.float_value());
  if (v.is_undefined()) Fail(v.undefined_hint());
  if (!v.is_string()) return def;
  std::string s = PyStrip(v.str(), nullptr, true, true);
  std::string low = PyLower(s);
  if (low == "inf" || low == "+inf" || low == "infinity" || low == "+infinity")
    return Value(HUGE_VAL);
  if (low == "-inf" || low == "-infinity") return Value(-HUGE_VAL);
  if (low == "nan" || low == "+nan" || low == "-nan") return Value(std::nan(""));
  errno = 0;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || !end || *end != '\0' || s.find_first_of("xXpP") != std::string::npos) return def;
  return Value(d);
}

Value RoundFilter(const Value& v, CallArgs& a) {
  int64_t precision = IntParam(a.Get(0, "precision"), 0, "precision");
  const Value* mv = a.Get(1, "method");
  std::string method = mv ? Str(*mv) : "common";
  if (method != "common" && method != "ceil" && method != "floor") {
    Fail("method must be common, ceil or floor");
  }
  if (!v.is_number()) Fail("round() needs a number, not " + TypeName(v));
  if (method == "common" && !v.is_float()) return Value(v.int_value());
  double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(precision, -300, 300)));
  double x = v.float_value() * scale;
  if (method == "ceil") {
    x = std::ceil(x);
  } else if (method == "floor") {
    x = std::floor(x);
  } else {
    x = std::nearbyint(x);  // round-half-even, as Python's round()
  }
  return Value(x / scale);
}

Value IndentFilter(const Value& v, CallArgs& a) {
  const Value* w = a.Get(0, "width");
  std::string ind =
      (w && w->is_string())
          ? w->str()
          : std::string(static_cast<size_t>(std::clamp<int64_t>(IntParam(w, 4, "width"), 0, 1024)),
                        ' ');
  bool first = BoolArg(a, 1, "first", false);
  bool blank = BoolArg(a, 2, "blank", false);
  std::vector<std::string> lines = PySplitLines(SoftStr(v) + "\n", false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : ind + lines[i]);
  }
  return Value(first ? ind + rv : rv);
}

Value TruncateFilter(const Value& v, CallArgs& a) {
  std::vector<uint32_t> cps = DecodeUtf8(SoftStr(v));
  int64_t length = IntParam(a.Get(0, "length"), 255, "length");
  bool killwords = BoolArg(a, 1, "killwords", false);
  const Value* ev = a.Get(2, "end");
  std::string end = ev ? Str(*ev) : "...";
  int64_t leeway = IntParam(a.Get(3, "leeway"), 5, "leeway");
  int64_t end_len = static_cast<int64_t>(CodePointCount(end));
  if (length < end_len) Fail("expected length >= " + std::to_string(end_len));
  if (static_cast<int64_t>(cps.size()) <= length + leeway) return Value(SoftStr(v));
  std::string head;
  for (int64_t i = 0; i < length - end_len; ++i) AppendUtf8(&head, cps[static_cast<size_t>(i)]);
  if (killwords) return Value(head + end);
  size_t sp = head.rfind(' ');
  return Value((sp == std::string::npos ? head : head.substr(0, sp)) + end);
}

Value BatchFilter(Renderer& r, const Value& v, CallArgs& a) {
  const Value* nv = a.Get(0, "linecount");
  if (!nv || IntParam(nv, 0, "linecount") <= 0) Fail("batch() needs a positive line count");
  const Value* fill = a.Get(1, "fill_with");
  size_t n = static_cast<size_t>(nv->int_value());
  List out, cur;
  for (Value& it : CheckedIterate(r, v)) {
    cur.push_back(std::move(it));
    if (cur.size() == n) {
      out.push_back(Value::MakeList(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (fill && !fill->is_none()) {
      r.CountWork(static_cast<int64_t>(n));
      while (cur.size() < n) cur.push_back(*fill);
    }
    out.push_back(Value::MakeList(std::move(cur)));
  }
  return Value::MakeList(std::move(out));
}

Value Length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return Value(int64_t{0});
    case Value::Kind::kString: return Value(static_cast<int64_t>(CodePointCount(v.str())));
    case Value::Kind::kList: return Value(static_cast<int64_t>(v.list().size()));
    case Value::Kind::kDict: return Value(static_cast<int64_t>(v.dict().size()));
    default: Fail("object of type '" + TypeName(v) + "' has no len()");
  }
}

const std::unordered_map<std::string, FilterFn>& Filters() {
  static const auto* filters = new std::unordered_map<std::string, FilterFn>{
      {"tojson", ToJsonFilter},
      {"safe", [](Renderer&, const Value& v, CallArgs&) { return Value(SoftStr(v)); }},
      {"string", [](Renderer&, const Value& v, CallArgs&) { return Value(SoftStr(v)); }},
      {"escape", [](Renderer&, const Value& v, CallArgs&) { return Value(HtmlEscape(SoftStr(v))); }},
      {"trim", [](Renderer&, const Value& v, CallArgs& a) {
         const Value* c = a.Get(0, "chars");
         std::string chars = c && !c->is_none() ? Str(*c) : "";
         return Value(PyStrip(SoftStr(v), c && !c->is_none() ? &chars : nullptr, true, true));
       }},
      {"upper", [](Renderer&, const Value& v, CallArgs&) { return Value(PyUpper(SoftStr(v))); }},
      {"lower", [](Renderer&, const Value& v, CallArgs&) { return Value(PyLower(SoftStr(v))); }},
      {"title", [](Renderer&, const Value& v, CallArgs&) { return Value(JinjaTitle(SoftStr(v))); }},
      {"capitalize", [](Renderer&, const Value& v, CallArgs&) { return Value(PyCapitalize(SoftStr(v))); }},
      {"length", [](Renderer&, const Value& v, CallArgs&) { return Length(v); }},
      {"first", [](Renderer&, const Value& v, CallArgs&) {
         if (v.is_undefined()) return Value::Undefined("No first item, sequence was empty.");
         List items = Iterate(v);
         return items.empty() ? Value::Undefined("No first item, sequence was empty.") : items[0];
       }},
      {"last", [](Renderer&, const Value& v, CallArgs&) {
         if (v.is_undefined()) Fail(v.undefined_hint());
         List items = Iterate(v);
         return items.empty() ? Value::Undefined("No last item, sequence was empty.") : items.back();
       }},
      {"join", [](Renderer& r, const Value& v, CallArgs& a) {
         const Value* d = a.Get(0, "d");
         std::string sep = d ? Str(*d) : "";
         const Value* attr = a.Get(1, "attribute");
         std::string out;
         List items = CheckedIterate(r, v);
         for (size_t i = 0; i < items.size(); ++i) {
           if (i) out += sep;
           out += Str(attr && !attr->is_none() ? AttrPath(items[i], *attr) : items[i]);
           r.CheckSize(out.size());
         }
         return Value(std::move(out));
       }},
      {"default", [](Renderer&, const Value& v, CallArgs& a) {
         const Value* d = a.Get(0, "default_value");
         bool boolean = BoolArg(a, 1, "boolean", false);
         if (v.is_undefined() || (boolean && !Truthy(v))) return d ? *d : Value("");
         return v;
       }},
      {"list", [](Renderer& r, const Value& v, CallArgs&) { return Value::MakeList(CheckedIterate(r, v)); }},
      {"int", [](Renderer&, const Value& v, CallArgs& a) { return IntFilter(v, a); }},
      {"float", [](Renderer&, const Value& v, CallArgs& a) { return FloatFilter(v, a); }},
      {"abs", [](Renderer&, const Value& v, CallArgs&) {
         if (!v.is_number()) Fail("bad operand type for abs(): '" + TypeName(v) + "'");
         if (v.is_float()) return Value(std::fabs(v.float_value()));
         if (v.int_value() == INT64_MIN) Fail("integer overflow");
         return Value(static_cast<int64_t>(std::llabs(v.int_value())));
       }},
      {"round", [](Renderer&, const Value& v, CallArgs& a) { return RoundFilter(v, a); }},
      {"replace", [](Renderer& r, const Value& v, CallArgs& a) {
         const Value* o = a.Get(0, "old");
         const Value* n = a.Get(1, "new");
         if (!o || !n) Fail("replace() needs old and new");
         const Value* c = a.Get(2, "count");
         return Value(PyReplace(r, SoftStr(v), Str(*o), Str(*n), c && !c->is_none() ? c->int_value() : -1));
       }},
      {"indent", [](Renderer&, const Value& v, CallArgs& a) { return IndentFilter(v, a); }},
      {"truncate", [](Renderer&, const Value& v, CallArgs& a) { return TruncateFilter(v, a); }},
      {"center", [](Renderer&, const Value& v, CallArgs& a) {
         const Value* w = a.Get(0, "width");
         return Value(PyPad(SoftStr(v), "center", std::min<int64_t>(IntParam(w, 80, "width"), 1 << 20), " "));
       }},
      {"wordcount", [](Renderer&, const Value& v, CallArgs&) { return Value(WordCount(SoftStr(v))); }},
      {"items", [](Renderer& r, const Value& v, CallArgs&) {
         if (v.is_undefined()) return Value::MakeList({});
         if (!v.is_dict()) Fail("Can only get item pairs from a mapping.");
         r.CountWork(static_cast<int64_t>(v.dict().size()) / 4);
         List out;
         for (const auto& [k, val] : v.dict().items()) out.push_back(Value::MakeList({k, val}, true));
         return Value::MakeList(std::move(out));
       }},
      {"dictsort", DictSortFilter},
      {"sort", SortFilter},
      {"unique", UniqueFilter},
      {"map", MapFilter},
      {"select", [](Renderer& r, const Value& v, CallArgs& a) { return SelectFilter(r, v, a, true, false); }},
      {"reject", [](Renderer& r, const Value& v, CallArgs& a) { return SelectFilter(r, v, a, false, false); }},
      {"selectattr", [](Renderer& r, const Value& v, CallArgs& a) { return SelectFilter(r, v, a, true, true); }},
      {"rejectattr", [](Renderer& r, const Value& v, CallArgs& a) { return SelectFilter(r, v, a, false, true); }},
      {"reverse", [](Renderer& r, const Value& v, CallArgs&) {
         if (v.is_string()) {
           std::vector<uint32_t> cps = DecodeUtf8(v.str());
           std::string out;
           for (size_t i = cps.size(); i > 0; --i) AppendUtf8(&out, cps[i - 1]);
           return Value(std::move(out));
         }
         List items = CheckedIterate(r, v);
         std::reverse(items.begin(), items.end());
         return Value::MakeList(std::move(items));
       }},
      {"sum", [](Renderer& r, const Value& v, CallArgs& a) {
         const Value* attr = a.Get(0, "attribute");
         const Value* start = a.Get(1, "start");
         Value total = start ? *start : Value(int64_t{0});
         for (const Value& it : CheckedIterate(r, v)) {
           total = BinaryOp(r, "+", total, attr && !attr->is_none() ? AttrPath(it, *attr) : it);
         }
         return total;
       }},
      {"min", [](Renderer& r, const Value& v, CallArgs& a) { return MinMax(r, v, a, false); }},
      {"max", [](Renderer& r, const Value& v, CallArgs& a) { return MinMax(r, v, a, true); }},
      {"batch", BatchFilter},
      {"attr", [](Renderer&, const Value& v, CallArgs& a) {
         const Value* n = a.Get(0, "name");
         if (!n) Fail("attr() needs a name");
         return GetAttr(v, Str(*n));
       }},
      {"format", [](Renderer& r, const Value& v, CallArgs& a) {
         Value args = a.args.size() == 1 && a.kwargs.empty() ? Value::MakeList(a.args, true)
                                                             : Value::MakeList(a.args, true);
         return Value(PercentFormat(r, SoftStr(v), args));
       }},
  };
  return *filters;
}

bool IsInt(const Value& v) {
  return v.is_int();
}

int64_t NeedInt(const Value& v, const char* test) {
  if (v.is_undefined()) Fail(v.undefined_hint());
  if (!v.is_number()) Fail(std::string("test '") + test + "' needs a number, not " + TypeName(v));
  if (v.is_float()) return static_cast<int64_t>(v.float_value());
  return v.int_value();
}

const Value& NeedArg(const CallArgs& a, const char* test) {
  if (a.args.empty()) Fail(std::string("test '") + test + "' needs an argument");
  return a.args[0];
}

const std::unordered_map<std::string, TestFn>& Tests() {
  static const auto* tests = new std::unordered_map<std::string, TestFn>{
      {"defined", [](Renderer&, const Value& v, CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](Renderer&, const Value& v, CallArgs&) { return v.is_undefined(); }},
      {"none", [](Renderer&, const Value& v, CallArgs&) { return v.is_none(); }},
      {"boolean", [](Renderer&, const Value& v, CallArgs&) { return v.is_bool(); }},
      {"true", [](Renderer&, const Value& v, CallArgs&) { return v.is_bool() && v.bool_value(); }},
      {"false",
       [](Renderer&, const Value& v, CallArgs&) { return v.is_bool() && !v.bool_value(); }},
      {"integer", [](Renderer&, const Value& v, CallArgs&) { return IsInt(v); }},
      {"float", [](Renderer&, const Value& v, CallArgs&) { return v.is_float(); }},
      {"number", [](Renderer&, const Value& v, CallArgs&) { return v.is_number(); }},
      {"string", [](Renderer&, const Value& v, CallArgs&) { return v.is_string(); }},
      {"mapping", [](Renderer&, const Value& v, CallArgs&) { return v.is_dict(); }},
      {"iterable",
       [](Renderer&, const Value& v, CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
       }},
      {"sequence",
       [](Renderer&, const Value& v, CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
       }},
      {"callable", [](Renderer&, const Value& v,
                      CallArgs&) { return v.is_object() && v.object()->IsCallable(); }},
      {"escaped", [](Renderer&, const Value&, CallArgs&) { return false; }},
      {"odd", [](Renderer&, const Value& v, CallArgs&) { return (NeedInt(v, "odd") & 1) == 1; }},
      {"even", [](Renderer&, const Value& v, CallArgs&) { return (NeedInt(v, "even") & 1) == 0; }},
      {"divisibleby",
       [](Renderer&, const Value& v, CallArgs& a) {
         int64_t d = NeedInt(NeedArg(a, "divisibleby"), "divisibleby");
         if (d == 0) Fail("integer division or modulo by zero");
         return NeedInt(v, "divisibleby") % d == 0;
       }},
      {"eq", [](Renderer&, const Value& v, CallArgs& a) { return Equals(v, NeedArg(a, "eq")); }},
      {"ne", [](Renderer&, const Value& v, CallArgs& a) { return !Equals(v, NeedArg(a, "ne")); }},
      {"lt",
       [](Renderer&, const Value& v, CallArgs& a) { return Compare(v, NeedArg(a, "lt")) < 0; }},
      {"le",
       [](Renderer&, const Value& v, CallArgs& a) { return Compare(v, NeedArg(a, "le")) <= 0; }},
      {"gt",
       [](Renderer&, const Value& v, CallArgs& a) { return Compare(v, NeedArg(a, "gt")) > 0; }},
      {"ge",
       [](Renderer&, const Value& v, CallArgs& a) { return Compare(v, NeedArg(a, "ge")) >= 0; }},
      {"in",
       [](Renderer& r, const Value& v, CallArgs& a) { return Contains(r, NeedArg(a, "in"), v); }},
      {"sameas",
       [](Renderer&, const Value& v, CallArgs& a) {
         const Value& o = NeedArg(a, "sameas");
         if (v.kind() != o.kind()) return false;
         if (v.is_none() || v.is_undefined()) return true;
         if (v.is_bool()) return v.bool_value() == o.bool_value();
         if (v.is_int())
           return v.int_value() == o.int_value() && v.int_value() >= -5 && v.int_value() <= 256;
         return v.ptr() == o.ptr();
       }},
      {"lower",
       [](Renderer&, const Value& v, CallArgs&) { return PyStrPredicate(SoftStr(v), "islower"); }},
      {"upper",
       [](Renderer&, const Value& v, CallArgs&) { return PyStrPredicate(SoftStr(v), "isupper"); }},
      {"filter", [](Renderer&, const Value& v,
                    CallArgs&) { return v.is_string() && Filters().count(v.str()) > 0; }},
  };
  return *tests;
}

}  // namespace

namespace {

// Each filter's Python signature (parameter names after the value), so that a call Python would
// reject with a TypeError fails here too instead of silently ignoring an argument.
void CheckSignature(const std::string& name, const CallArgs& args) {
  static const auto* sigs = new std::unordered_map<std::string, std::vector<std::string>>{
      {"tojson", {"ensure_ascii", "indent", "separators", "sort_keys"}},
      {"trim", {"chars"}},
      {"default", {"default_value", "boolean"}},
      {"join", {"d", "attribute"}},
      {"int", {"default", "base"}},
      {"float", {"default"}},
      {"round", {"precision", "method"}},
      {"replace", {"old", "new", "count"}},
      {"indent", {"width", "first", "blank"}},
      {"truncate", {"length", "killwords", "end", "leeway"}},
      {"center", {"width"}},
      {"sort", {"reverse", "case_sensitive", "attribute"}},
      {"dictsort", {"case_sensitive", "by", "reverse"}},
      {"unique", {"case_sensitive", "attribute"}},
      {"min", {"case_sensitive", "attribute"}},
      {"max", {"case_sensitive", "attribute"}},
      {"sum", {"attribute", "start"}},
      {"batch", {"linecount", "fill_with"}},
      {"attr", {"name"}},
  };
  static const std::unordered_set<std::string> kVariadic = {"map",        "select",     "reject",
                                                            "selectattr", "rejectattr", "format"};
  if (kVariadic.count(name)) return;
  static const std::vector<std::string> kNone;
  auto it = sigs->find(name);
  const std::vector<std::string>& params = it == sigs->end() ? kNone : it->second;
  if (args.args.size() > params.size()) {
    Fail(name + "() takes at most " + std::to_string(params.size()) +
         " argument(s) after the value");
  }
  for (const auto& [k, unused] : args.kwargs) {
    auto p = std::find(params.begin(), params.end(), k);
    if (p == params.end()) Fail(name + "() got an unexpected keyword argument '" + k + "'");
    if (static_cast<size_t>(p - params.begin()) < args.args.size()) {
      Fail(name + "() got multiple values for argument '" + k + "'");
    }
  }
}

}  // namespace

Value ApplyFilter(Renderer& r, const std::string& name, const Value& v, CallArgs& args) {
  static const std::unordered_map<std::string, std::string> kAliases = {
      {"d", "default"}, {"e", "escape"}, {"count", "length"}};
  auto alias = kAliases.find(name);
  const std::string& real = alias == kAliases.end() ? name : alias->second;
  auto it = Filters().find(real);
  if (it == Filters().end()) Fail("No filter named '" + name + "'.");
  CheckSignature(real, args);
  return it->second(r, v, args);
}

bool ApplyTest(Renderer& r, const std::string& name, const Value& v, CallArgs& args) {
  static const std::unordered_map<std::string, std::string> kAliases = {
      {"equalto", "eq"}, {"==", "eq"},          {"!=", "ne"}, {"lessthan", "lt"}, {"<", "lt"},
      {"<=", "le"},      {"greaterthan", "gt"}, {">", "gt"},  {">=", "ge"}};
  auto alias = kAliases.find(name);
  const std::string& real = alias == kAliases.end() ? name : alias->second;
  if (real == "test") return v.is_string() && Tests().count(v.str()) > 0;
  auto it = Tests().find(real);
  if (it == Tests().end()) Fail("No test named '" + name + "'.");
  return it->second(r, v, args);
}

}  // namespace tessera::text::jinja
