// Renderer: walks a TemplateProgram with jinja2's runtime semantics. One Renderer per Render call;
// it owns all mutable state, so a TemplateProgram can be rendered concurrently.
#ifndef TESSERA_TEXT_JINJA_SRC_INTERPRETER_H_
#define TESSERA_TEXT_JINJA_SRC_INTERPRETER_H_

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "ast.h"
#include "tessera/text/jinja.h"
#include "value.h"

namespace tessera::text::jinja {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
  const Value* Find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using ScopePtr = std::shared_ptr<Scope>;

// A host function (globals, bound methods, loop.cycle...).
class NativeFunction : public Object {
 public:
  using Fn = std::function<Value(Renderer&, CallArgs&)>;
  NativeFunction(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string TypeName() const override { return "builtin_function_or_method"; }
  bool IsCallable() const override { return true; }
  Value Call(Renderer& r, CallArgs& args) const override { return fn_(r, args); }
  std::string Repr() const override { return "<built-in function " + name_ + ">"; }

 private:
  std::string name_;
  Fn fn_;
};

// jinja2's namespace(): the one mutable object templates may assign attributes on.
class Namespace : public Object {
 public:
  std::string TypeName() const override { return "Namespace"; }
  Value GetAttr(const std::string& name) const override;
  void SetAttr(const std::string& name, Value v) { attrs_.Set(Value(name), std::move(v)); }
  std::string Repr() const override;
  void Clear() { attrs_ = Dict(); }

 private:
  Dict attrs_;
};

class Renderer {
 public:
  Renderer(const TemplateLimits& limits, const RenderOptions& options);
  // Breaks the reference cycles a render can build (a macro stored in the scope it closes over,
  // a namespace holding itself) so that everything is freed.
  ~Renderer();
  void TrackNamespace(const std::shared_ptr<Namespace>& ns) { namespaces_.push_back(ns); }

  // Renders `program` with `context` as the root variables.
  std::string Run(const TemplateProgram& program, const nlohmann::ordered_json& context);

  // Budget checks, used by builtins too.
  void CountWork(int64_t n);     // loop iterations and elements walked
  void CheckSize(size_t bytes);  // size of any string being built
  const TemplateLimits& limits() const { return limits_; }
  const RenderOptions& options() const { return options_; }

  Value CallValue(const Value& callee, CallArgs& args);
  Value InvokeMacro(const Node& def, const std::vector<MacroParam>& params, const Body& body,
                    const ScopePtr& closure, const std::string& name, CallArgs& args);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow Exec(const Body& body, const ScopePtr& scope, std::string* out);
  Flow ExecNode(const Node& node, const ScopePtr& scope, std::string* out);
  Flow ExecFor(const Node& node, const ScopePtr& scope, std::string* out);
  void ExecSet(const Target& target, Value value, const ScopePtr& scope);
  void Append(std::string* out, const std::string& s);

  Value Eval(const Expr& e, const ScopePtr& scope);
  Value EvalCall(const Expr& e, const ScopePtr& scope);
  Value EvalFilterChain(const Expr& f, const Value* input, const ScopePtr& scope);
  Value EvalCompare(const Expr& e, const ScopePtr& scope);
  void EvalArgs(const Expr& e, const ScopePtr& scope, CallArgs* out);
  Value Lookup(const std::string& name, const ScopePtr& scope) const;

  const TemplateLimits& limits_;
  const RenderOptions& options_;
  int64_t work_ = 0;
  int call_depth_ = 0;
  std::unordered_map<std::string, Value> globals_;
  std::vector<ScopePtr> closure_scopes_;
  std::vector<std::weak_ptr<Namespace>> namespaces_;
};

// Builtins (builtins.cc).
Value GetAttr(const Value& obj, const std::string& name);
Value GetItem(const Value& obj, const Value& key);
Value Slice(Renderer& r, const Value& obj, const Value& start, const Value& stop,
            const Value& step);
Value CallMethod(Renderer& r, const Value& obj, const std::string& name, CallArgs& args,
                 bool* found);
Value ApplyFilter(Renderer& r, const std::string& name, const Value& v, CallArgs& args);
bool ApplyTest(Renderer& r, const std::string& name, const Value& v, CallArgs& args);
Value BinaryOp(Renderer& r, const std::string& op, const Value& a, const Value& b);
bool Contains(Renderer& r, const Value& container, const Value& item);
// The values a for loop visits: list items, dict keys, string characters; undefined -> none.
List Iterate(const Value& v);
void AddGlobals(std::unordered_map<std::string, Value>* globals);

}  // namespace tessera::text::jinja

#endif  // TESSERA_TEXT_JINJA_SRC_INTERPRETER_H_
