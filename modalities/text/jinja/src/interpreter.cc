#include "interpreter.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace tessera::text::jinja {
namespace {

// A {% macro %} (or the caller of a {% call %} block) closed over the scope it was defined in.
class Macro : public Object {
 public:
  Macro(const Node* def, const std::vector<MacroParam>* params, const Body* body, ScopePtr closure,
        std::string name)
      : def_(def),
        params_(params),
        body_(body),
        closure_(std::move(closure)),
        name_(std::move(name)) {}
  std::string TypeName() const override { return "Macro"; }
  bool IsCallable() const override { return true; }
  Value Call(Renderer& r, CallArgs& args) const override {
    return r.InvokeMacro(*def_, *params_, *body_, closure_, name_, args);
  }
  std::string Repr() const override { return "<Macro '" + name_ + "'>"; }
  Value GetAttr(const std::string& name) const override {
    if (name == "name") return Value(name_);
    return Object::GetAttr(name);
  }

 private:
  const Node* def_;
  const std::vector<MacroParam>* params_;
  const Body* body_;
  ScopePtr closure_;
  std::string name_;
};

// The `loop` variable inside a for loop.
class LoopObject : public Object {
 public:
  LoopObject(std::shared_ptr<const List> items, int64_t index0, int depth0)
      : items_(std::move(items)), index0_(index0), depth0_(depth0) {}
  std::string TypeName() const override { return "LoopContext"; }
  std::string Repr() const override {
    return "<LoopContext " + std::to_string(index0_ + 1) + "/" + std::to_string(Length()) + ">";
  }
  Value GetAttr(const std::string& name) const override {
    const int64_t n = Length();
    if (name == "index") return Value(index0_ + 1);
    if (name == "index0") return Value(index0_);
    if (name == "revindex") return Value(n - index0_);
    if (name == "revindex0") return Value(n - index0_ - 1);
    if (name == "first") return Value(index0_ == 0);
    if (name == "last") return Value(index0_ == n - 1);
    if (name == "length") return Value(n);
    if (name == "depth") return Value(depth0_ + 1);
    if (name == "depth0") return Value(depth0_);
    if (name == "previtem") {
      if (index0_ == 0) return Value::Undefined("there is no previous item");
      return (*items_)[static_cast<size_t>(index0_ - 1)];
    }
    if (name == "nextitem") {
      if (index0_ + 1 >= n) return Value::Undefined("there is no next item");
      return (*items_)[static_cast<size_t>(index0_ + 1)];
    }
    if (name == "cycle") {
      int64_t i = index0_;
      return Value::MakeObject(
          std::make_shared<NativeFunction>("cycle", [i](Renderer&, CallArgs& a) -> Value {
            if (a.args.empty()) Fail("no items for cycling given");
            return a.args[static_cast<size_t>(i) % a.args.size()];
          }));
    }
    if (name == "changed") {
      auto self = std::static_pointer_cast<const LoopObject>(shared_from_this());
      return Value::MakeObject(
          std::make_shared<NativeFunction>("changed", [self](Renderer&, CallArgs& a) -> Value {
            Value now = Value::MakeList(a.args);
            bool changed = !self->has_last_changed_ || !Equals(now, self->last_changed_);
            self->has_last_changed_ = true;
            self->last_changed_ = now;
            return Value(changed);
          }));
    }
    return Object::GetAttr(name);
  }
  void set_index0(int64_t i) { index0_ = i; }

 private:
  int64_t Length() const { return static_cast<int64_t>(items_->size()); }
  std::shared_ptr<const List> items_;  // shared: `loop` may outlive the for statement
  int64_t index0_;
  int depth0_;
  mutable bool has_last_changed_ = false;
  mutable Value last_changed_;
};

}  // namespace

Value Namespace::GetAttr(const std::string& name) const {
  const Value* v = attrs_.FindStr(name);
  if (v) return *v;
  return Value::Undefined("'Namespace object' has no attribute '" + name + "'");
}

std::string Namespace::Repr() const {
  // A namespace can hold itself (`{% set ns.me = ns %}`, or through a list): as Python prints a
  // dict inside its own repr, the inner one is "<Namespace {...}>".
  thread_local std::vector<const Namespace*> printing;
  if (std::find(printing.begin(), printing.end(), this) != printing.end())
    return "<Namespace {...}>";
  printing.push_back(this);
  struct Pop {
    ~Pop() { printing.pop_back(); }
  } pop;
  std::string out = "<Namespace {";
  bool first = true;
  for (const auto& [k, v] : attrs_.items()) {
    if (!first) out += ", ";
    first = false;
    out += jinja::Repr(k) + ": " + jinja::Repr(v);
    ScopedReprLimit::Check(out.size());
  }
  return out + "}>";
}

Renderer::Renderer(const TemplateLimits& limits, const RenderOptions& options)
    : limits_(limits), options_(options) {
  AddGlobals(&globals_);
}

Renderer::~Renderer() {
  for (const ScopePtr& s : closure_scopes_) s->vars.clear();
  for (const auto& weak : namespaces_) {
    if (auto ns = weak.lock()) ns->Clear();
  }
}

void Renderer::CountWork(int64_t n) {
  work_ += n;
  if (work_ > limits_.max_loop_iterations) {
    FailLimit("template exceeded max_loop_iterations (" +
              std::to_string(limits_.max_loop_iterations) + ")");
  }
}

void Renderer::CheckSize(size_t bytes) {
  if (bytes > limits_.max_output_bytes) {
    FailLimit("template output exceeded max_output_bytes (" +
              std::to_string(limits_.max_output_bytes) + ")");
  }
}

void Renderer::Append(std::string* out, const std::string& s) {
  CheckSize(out->size() + s.size());
  out->append(s);
}

std::string Renderer::Run(const TemplateProgram& program, const nlohmann::ordered_json& context) {
  auto root = std::make_shared<Scope>();
  if (context.is_object()) {
    for (const auto& [k, v] : context.items()) root->vars[k] = FromJson(v);
  } else if (!context.is_null()) {
    Fail("the render context must be a JSON object");
  }
  std::string out;
  ScopedReprLimit repr_limit(limits_.max_output_bytes);
  Exec(program.body, root, &out);
  return out;
}

Value Renderer::Lookup(const std::string& name, const ScopePtr& scope) const {
  if (const Value* v = scope->Find(name)) return *v;
  auto it = globals_.find(name);
  if (it != globals_.end()) return it->second;
  return Value::Undefined("'" + name + "' is undefined");
}

// ---- statements -----------------------------------------------------------------------------

Renderer::Flow Renderer::Exec(const Body& body, const ScopePtr& scope, std::string* out) {
  for (const NodePtr& n : body) {
    Flow f = ExecNode(*n, scope, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Renderer::Flow Renderer::ExecNode(const Node& n, const ScopePtr& scope, std::string* out) {
  switch (n.kind) {
    case Node::Kind::kText: Append(out, n.text); return Flow::kNormal;
    case Node::Kind::kOutput: Append(out, Str(Eval(*n.expr, scope))); return Flow::kNormal;
    case Node::Kind::kIf:
      for (size_t i = 0; i < n.conds.size(); ++i) {
        if (Truthy(Eval(*n.conds[i], scope))) return Exec(n.bodies[i], scope, out);
      }
      return Exec(n.else_body, scope, out);
    case Node::Kind::kFor: return ExecFor(n, scope, out);
    case Node::Kind::kSet: ExecSet(n.target, Eval(*n.expr, scope), scope); return Flow::kNormal;
    case Node::Kind::kSetBlock: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      std::string captured;
      Exec(n.body, inner, &captured);
      Value v(std::move(captured));
      if (n.filter) v = EvalFilterChain(*n.filter, &v, scope);
      ExecSet(n.target, std::move(v), scope);
      return Flow::kNormal;
    }
    case Node::Kind::kMacro:
      closure_scopes_.push_back(scope);
      scope->vars[n.name] =
          Value::MakeObject(std::make_shared<Macro>(&n, &n.params, &n.body, scope, n.name));
      return Flow::kNormal;
    case Node::Kind::kCallBlock: {
      closure_scopes_.push_back(scope);
      Value caller =
          Value::MakeObject(std::make_shared<Macro>(&n, &n.params, &n.body, scope, "caller"));
      const Expr& call = *n.expr;
      Value callee = Eval(*call.items[0], scope);
      CallArgs args;
      EvalArgs(call, scope, &args);
      args.kwargs.emplace_back("caller", caller);
      Append(out, Str(CallValue(callee, args)));
      return Flow::kNormal;
    }
    case Node::Kind::kFilterBlock: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      std::string captured;
      Exec(n.body, inner, &captured);
      Value v(std::move(captured));
      Append(out, Str(EvalFilterChain(*n.filter, &v, scope)));
      return Flow::kNormal;
    }
    case Node::Kind::kBreak: return Flow::kBreak;
    case Node::Kind::kContinue: return Flow::kContinue;
    case Node::Kind::kWith: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      for (size_t i = 0; i < n.with_targets.size(); ++i) {
        ExecSet(n.with_targets[i], Eval(*n.with_values[i], scope), inner);
      }
      return Exec(n.body, inner, out);
    }
    case Node::Kind::kScope: return Exec(n.body, scope, out);
  }
  return Flow::kNormal;
}

Renderer::Flow Renderer::ExecFor(const Node& n, const ScopePtr& scope, std::string* out) {
  if (n.recursive) Fail("recursive for loops are not supported");
  List all = Iterate(Eval(*n.expr, scope));
  if (n.cond) {
    // `for x in xs if cond` filters before the loop counts (loop.index, loop.length).
    List kept;
    for (Value& item : all) {
      CountWork(1);
      auto probe = std::make_shared<Scope>();
      probe->parent = scope;
      ExecSet(n.target, item, probe);
      if (Truthy(Eval(*n.cond, probe))) kept.push_back(std::move(item));
    }
    all = std::move(kept);
  }
  auto shared_items = std::make_shared<const List>(std::move(all));
  const List& items = *shared_items;
  const int depth0 = 0;  // loop.depth counts recursive-loop levels only; each plain loop is 1
  for (size_t i = 0; i < items.size(); ++i) {
    CountWork(1);
    auto iter = std::make_shared<Scope>();  // each iteration starts from the outer values
    iter->parent = scope;
    ExecSet(n.target, items[i], iter);
    iter->vars["loop"] = Value::MakeObject(
        std::make_shared<LoopObject>(shared_items, static_cast<int64_t>(i), depth0));
    if (Exec(n.body, iter, out) == Flow::kBreak) break;
  }
  if (items.empty()) {
    auto inner = std::make_shared<Scope>();
    inner->parent = scope;
    Exec(n.else_body, inner, out);
  }
  return Flow::kNormal;
}

void Renderer::ExecSet(const Target& t, Value value, const ScopePtr& scope) {
  switch (t.kind) {
    case Target::Kind::kName: scope->vars[t.name] = std::move(value); return;
    case Target::Kind::kAttr: {
      Value ns = Lookup(t.name, scope);
      auto* obj = ns.is_object() ? dynamic_cast<Namespace*>(ns.object()) : nullptr;
      if (!obj) Fail("cannot assign attribute on non-namespace object");
      obj->SetAttr(t.attr, std::move(value));
      return;
    }
    case Target::Kind::kTuple: {
      if (value.is_undefined()) Fail(value.undefined_hint());
      List items = Iterate(value);
      if (items.size() != t.items.size()) {
        Fail(items.size() < t.items.size()
                 ? "not enough values to unpack (expected " + std::to_string(t.items.size()) +
                       ", got " + std::to_string(items.size()) + ")"
                 : "too many values to unpack (expected " + std::to_string(t.items.size()) + ")");
      }
      for (size_t i = 0; i < items.size(); ++i) ExecSet(t.items[i], std::move(items[i]), scope);
      return;
    }
  }
}

Value Renderer::InvokeMacro(const Node& def, const std::vector<MacroParam>& params,
                            const Body& body, const ScopePtr& closure, const std::string& name,
                            CallArgs& args) {
  if (call_depth_ >= limits_.max_recursion_depth) {
    FailLimit("template exceeded max_recursion_depth (" +
              std::to_string(limits_.max_recursion_depth) + ") in macro '" + name + "'");
  }
  auto scope = std::make_shared<Scope>();
  scope->parent = closure;
  List varargs;
  for (size_t i = 0; i < args.args.size(); ++i) {
    if (i < params.size()) {
      scope->vars[params[i].name] = args.args[i];
    } else {
      varargs.push_back(args.args[i]);
    }
  }
  auto kwargs = std::make_shared<Dict>();
  for (auto& [k, v] : args.kwargs) {
    bool is_param = false;
    for (size_t i = 0; i < params.size(); ++i) {
      if (params[i].name != k) continue;
      if (i < args.args.size())
        Fail("macro '" + name + "' got multiple values for argument '" + k + "'");
      is_param = true;
    }
    if (is_param || k == "caller") {
      scope->vars[k] = v;
    } else {
      kwargs->Set(Value(k), v);
    }
  }
  for (const MacroParam& p : params) {
    if (scope->vars.count(p.name)) continue;
    scope->vars[p.name] = p.default_value
                              ? Eval(*p.default_value, scope)
                              : Value::Undefined("parameter '" + p.name + "' was not provided");
  }
  scope->vars["varargs"] = Value::MakeList(std::move(varargs));
  scope->vars["kwargs"] = Value::MakeDict(std::move(kwargs));
  (void)def;
  // Each call counts against the work budget: depth alone does not bound macros that call
  // themselves several times (2^depth calls).
  CountWork(1);
  ++call_depth_;
  std::string out;
  Exec(body, scope, &out);
  --call_depth_;
  return Value(std::move(out));
}

Value Renderer::CallValue(const Value& callee, CallArgs& args) {
  if (callee.is_object() && callee.object()->IsCallable())
    return callee.object()->Call(*this, args);
  if (callee.is_undefined()) Fail(callee.undefined_hint());
  Fail("'" + TypeName(callee) + "' object is not callable");
}

// ---- expressions ----------------------------------------------------------------------------

void Renderer::EvalArgs(const Expr& e, const ScopePtr& scope, CallArgs* out) {
  for (const ExprPtr& a : e.args) out->args.push_back(Eval(*a, scope));
  if (e.star_args) {
    for (Value& v : Iterate(Eval(*e.star_args, scope))) out->args.push_back(std::move(v));
  }
  for (const auto& [k, v] : e.kwargs) out->kwargs.emplace_back(k, Eval(*v, scope));
  if (e.star_kwargs) {
    Value d = Eval(*e.star_kwargs, scope);
    if (!d.is_dict()) Fail("argument after ** must be a mapping");
    for (const auto& [k, v] : d.dict().items()) out->kwargs.emplace_back(Str(k), v);
  }
}

Value Renderer::EvalCall(const Expr& e, const ScopePtr& scope) {
  const Expr& callee = *e.items[0];
  CallArgs args;
  if (callee.kind == Expr::Kind::kGetAttr) {
    Value obj = Eval(*callee.items[0], scope);
    if (obj.is_string() || obj.is_list() || obj.is_dict()) {
      EvalArgs(e, scope, &args);
      bool found = false;
      Value v = CallMethod(*this, obj, callee.name, args, &found);
      if (found) return v;
      if (obj.is_dict()) {  // a dict entry holding a callable (never from JSON, but be exact)
        if (const Value* item = obj.dict().FindStr(callee.name)) return CallValue(*item, args);
      }
      Fail("'" + TypeName(obj) + " object' has no attribute '" + callee.name + "'");
    }
    Value fn = GetAttr(obj, callee.name);
    EvalArgs(e, scope, &args);
    return CallValue(fn, args);
  }
  Value fn = Eval(callee, scope);
  EvalArgs(e, scope, &args);
  return CallValue(fn, args);
}

Value Renderer::EvalFilterChain(const Expr& f, const Value* input, const ScopePtr& scope) {
  Value operand = f.items[0] ? (f.items[0]->kind == Expr::Kind::kFilter
                                    ? EvalFilterChain(*f.items[0], input, scope)
                                    : Eval(*f.items[0], scope))
                             : *input;
  CallArgs args;
  EvalArgs(f, scope, &args);
  return ApplyFilter(*this, f.name, operand, args);
}

Value Renderer::EvalCompare(const Expr& e, const ScopePtr& scope) {
  Value left = Eval(*e.items[0], scope);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = Eval(*e.items[i + 1], scope);
    const std::string& op = e.ops[i];
    bool r;
    if (op == "==") {
      r = Equals(left, right);
    } else if (op == "!=") {
      r = !Equals(left, right);
    } else if (op == "in") {
      r = Contains(*this, right, left);
    } else if (op == "notin") {
      r = !Contains(*this, right, left);
    } else {
      int c = Compare(left, right);
      r = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
    }
    if (!r) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Renderer::Eval(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case Expr::Kind::kConst: return e.value;
    case Expr::Kind::kName: return Lookup(e.name, scope);
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      List items;
      items.reserve(e.items.size());
      for (const ExprPtr& i : e.items) items.push_back(Eval(*i, scope));
      return Value::MakeList(std::move(items), e.kind == Expr::Kind::kTuple);
    }
    case Expr::Kind::kDict: {
      auto d = std::make_shared<Dict>();
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value k = Eval(*e.items[i], scope);
        d->Set(k, Eval(*e.items[i + 1], scope));
      }
      return Value::MakeDict(std::move(d));
    }
    case Expr::Kind::kGetAttr: return GetAttr(Eval(*e.items[0], scope), e.name);
    case Expr::Kind::kGetItem: {
      Value obj = Eval(*e.items[0], scope);
      return GetItem(obj, Eval(*e.items[1], scope));
    }
    case Expr::Kind::kSlice: {
      Value obj = Eval(*e.items[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i) {
        parts[i] = e.items[i + 1] ? Eval(*e.items[i + 1], scope) : Value::None();
      }
      return Slice(*this, obj, parts[0], parts[1], parts[2]);
    }
    case Expr::Kind::kCall: return EvalCall(e, scope);
    case Expr::Kind::kFilter: return EvalFilterChain(e, nullptr, scope);
    case Expr::Kind::kTest: {
      Value v = Eval(*e.items[0], scope);
      CallArgs args;
      EvalArgs(e, scope, &args);
      return Value(ApplyTest(*this, e.name, v, args) != e.negated);
    }
    case Expr::Kind::kNeg:
    case Expr::Kind::kPos: {
      Value v = Eval(*e.items[0], scope);
      if (v.is_undefined()) Fail(v.undefined_hint());
      if (!v.is_number())
        Fail("bad operand type for unary " + std::string(e.kind == Expr::Kind::kNeg ? "-" : "+") +
             ": '" + TypeName(v) + "'");
      if (e.kind == Expr::Kind::kPos) return v.is_bool() ? Value(v.int_value()) : v;
      if (v.is_float()) return Value(-v.float_value());
      if (v.int_value() == INT64_MIN) Fail("integer overflow");
      return Value(-v.int_value());
    }
    case Expr::Kind::kNot: return Value(!Truthy(Eval(*e.items[0], scope)));
    case Expr::Kind::kAnd: {
      Value l = Eval(*e.items[0], scope);
      return Truthy(l) ? Eval(*e.items[1], scope) : l;
    }
    case Expr::Kind::kOr: {
      Value l = Eval(*e.items[0], scope);
      return Truthy(l) ? l : Eval(*e.items[1], scope);
    }
    case Expr::Kind::kBinary: {
      Value l = Eval(*e.items[0], scope);
      Value r = Eval(*e.items[1], scope);
      return BinaryOp(*this, e.name, l, r);
    }
    case Expr::Kind::kConcat: {
      std::string s;
      for (const ExprPtr& i : e.items) {
        s += Str(Eval(*i, scope));
        CheckSize(s.size());
      }
      return Value(std::move(s));
    }
    case Expr::Kind::kCompare: return EvalCompare(e, scope);
    case Expr::Kind::kCondExpr:
      if (Truthy(Eval(*e.items[0], scope))) return Eval(*e.items[1], scope);
      if (e.items[2]) return Eval(*e.items[2], scope);
      return Value::Undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined.");
  }
  return Value();
}

}  // namespace tessera::text::jinja
