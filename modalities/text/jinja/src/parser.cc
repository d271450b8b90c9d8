#include "parser.h"

#include <initializer_list>
#include <string>
#include <vector>

#include "lexer.h"

namespace tessera::text::jinja {
namespace {

// Bounds recursion in the parser (and so in the evaluator, which walks the same tree).
constexpr int kMaxNesting = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  std::unique_ptr<TemplateProgram> Run() {
    auto program = std::make_unique<TemplateProgram>();
    program->body = ParseBody({}, "");
    return program;
  }

 private:
  // RAII depth counter.
  class Nest {
   public:
    Nest(Parser* p) : p_(p) {
      if (++p_->depth_ > kMaxNesting) p_->Error("template nested too deeply");
    }
    ~Nest() { --p_->depth_; }

   private:
    Parser* p_;
  };

  const Token& Cur() const { return toks_[pos_]; }
  const Token& Peek(size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  void Next() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }

  [[noreturn]] void Error(const std::string& msg) const {
    Fail(std::to_string(Cur().line) + ":" + std::to_string(Cur().col) + ": " + msg);
  }

  static std::string Describe(const Token& t) {
    switch (t.type) {
      case Tok::kEof: return "end of template";
      case Tok::kVarEnd: return "end of print statement";
      case Tok::kBlockEnd: return "end of statement block";
      case Tok::kText: return "template data";
      default: return "'" + t.text + "'";
    }
  }

  bool IsOp(const char* op) const { return Cur().type == Tok::kOp && Cur().text == op; }
  bool IsName(const char* name) const { return Cur().type == Tok::kName && Cur().text == name; }
  bool SkipOp(const char* op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(const char* name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }
  void ExpectOp(const char* op) {
    if (!SkipOp(op)) Error(std::string("expected '") + op + "', got " + Describe(Cur()));
  }
  std::string ExpectName() {
    if (Cur().type != Tok::kName) Error("expected a name, got " + Describe(Cur()));
    std::string n = Cur().text;
    Next();
    return n;
  }
  void ExpectBlockEnd() {
    if (Cur().type != Tok::kBlockEnd)
      Error("expected end of statement block, got " + Describe(Cur()));
    Next();
  }

  ExprPtr Make(Expr::Kind k) const { return std::make_unique<Expr>(k, Cur().line); }

  // ---- statements ---------------------------------------------------------------------------

  // Parses until one of `end_tags` opens a block (the cursor is then on that tag's name).
  Body ParseBody(std::initializer_list<const char*> end_tags, const char* opener) {
    Nest nest(this);
    Body body;
    while (true) {
      const Token& t = Cur();
      if (t.type == Tok::kEof) {
        if (end_tags.size() == 0) return body;
        std::string want;
        for (const char* e : end_tags)
          want += (want.empty() ? "'" : " or '") + std::string(e) + "'";
        Error(std::string("unexpected end of template; the '") + opener +
              "' block is not closed (looking for " + want + ")");
      }
      if (t.type == Tok::kText) {
        auto n = std::make_unique<Node>(Node::Kind::kText, t.line);
        n->text = t.text;
        body.push_back(std::move(n));
        Next();
      } else if (t.type == Tok::kVarBegin) {
        Next();
        auto n = std::make_unique<Node>(Node::Kind::kOutput, Cur().line);
        n->expr = ParseTuple(true, {});
        if (Cur().type != Tok::kVarEnd)
          Error("expected end of print statement, got " + Describe(Cur()));
        Next();
        body.push_back(std::move(n));
      } else if (t.type == Tok::kBlockBegin) {
        Next();
        if (Cur().type == Tok::kName) {
          for (const char* e : end_tags) {
            if (Cur().text == e) return body;
          }
        }
        body.push_back(ParseStatement());
      } else {
        Error("unexpected " + Describe(t));
      }
    }
  }

  NodePtr ParseStatement() {
    if (Cur().type != Tok::kName) Error("expected a statement name, got " + Describe(Cur()));
    const std::string tag = Cur().text;
    const int line = Cur().line;
    if (tag == "if") return ParseIf();
    if (tag == "for") return ParseFor();
    if (tag == "set") return ParseSet();
    if (tag == "macro") return ParseMacro();
    if (tag == "call") return ParseCallBlock();
    if (tag == "filter") return ParseFilterBlock();
    if (tag == "with") return ParseWith();
    if (tag == "generation") {
      // transformers' AssistantTracker: {% generation %} marks assistant text; it renders as-is.
      Next();
      ExpectBlockEnd();
      auto n = std::make_unique<Node>(Node::Kind::kScope, line);
      n->body = ParseBody({"endgeneration"}, "generation");
      Next();
      ExpectBlockEnd();
      return n;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) Error("'" + tag + "' outside of a loop");
      Next();
      ExpectBlockEnd();
      return std::make_unique<Node>(tag == "break" ? Node::Kind::kBreak : Node::Kind::kContinue,
                                    line);
    }
    if (tag == "include" || tag == "import" || tag == "from" || tag == "extends" ||
        tag == "block") {
      Error("'" + tag + "' is not supported: templates cannot load other templates");
    }
    Error("Encountered unknown tag '" + tag + "'");
  }

  NodePtr ParseIf() {
    auto n = std::make_unique<Node>(Node::Kind::kIf, Cur().line);
    Next();  // if
    while (true) {
      n->conds.push_back(ParseTuple(false, {}));
      ExpectBlockEnd();
      n->bodies.push_back(ParseBody({"elif", "else", "endif"}, "if"));
      if (SkipName("elif")) continue;
      if (SkipName("else")) {
        ExpectBlockEnd();
        n->else_body = ParseBody({"endif"}, "if");
      }
      Next();  // endif
      ExpectBlockEnd();
      return n;
    }
  }

  NodePtr ParseFor() {
    auto n = std::make_unique<Node>(Node::Kind::kFor, Cur().line);
    Next();  // for
    n->target = ParseTargetList(false);
    if (!SkipName("in")) Error("expected 'in', got " + Describe(Cur()));
    n->expr = ParseTuple(false, {"recursive", "if"});
    if (SkipName("if")) n->cond = ParseExpression(true);
    if (SkipName("recursive")) n->recursive = true;
    ExpectBlockEnd();
    ++loop_depth_;
    n->body = ParseBody({"endfor", "else"}, "for");
    --loop_depth_;
    if (SkipName("else")) {
      ExpectBlockEnd();
      n->else_body = ParseBody({"endfor"}, "for");
    }
    Next();  // endfor
    ExpectBlockEnd();
    return n;
  }

  Target ParseOneTarget(bool allow_attr) {
    Target t;
    if (SkipOp("(")) {
      t = ParseTargetList(false);
      ExpectOp(")");
      if (t.kind != Target::Kind::kTuple) {
        Target tuple;
        tuple.kind = Target::Kind::kTuple;
        tuple.items.push_back(std::move(t));
        return tuple;
      }
      return t;
    }
    t.name = ExpectName();
    if (allow_attr && SkipOp(".")) {
      t.kind = Target::Kind::kAttr;
      t.attr = ExpectName();
    }
    return t;
  }

  Target ParseTargetList(bool allow_attr) {
    Target first = ParseOneTarget(allow_attr);
    if (!IsOp(",")) return first;
    Target tuple;
    tuple.kind = Target::Kind::kTuple;
    tuple.items.push_back(std::move(first));
    while (SkipOp(",")) {
      if (Cur().type != Tok::kName && !IsOp("(")) break;
      tuple.items.push_back(ParseOneTarget(false));
    }
    return tuple;
  }

  NodePtr ParseSet() {
    const int line = Cur().line;
    Next();  // set
    Target target = ParseTargetList(true);
    if (SkipOp("=")) {
      auto n = std::make_unique<Node>(Node::Kind::kSet, line);
      n->target = std::move(target);
      n->expr = ParseTuple(true, {});
      ExpectBlockEnd();
      return n;
    }
    auto n = std::make_unique<Node>(Node::Kind::kSetBlock, line);
    if (target.kind == Target::Kind::kTuple) Error("a block set needs a single target");
    n->target = std::move(target);
    if (IsOp("|")) n->filter = ParseFilterChain(nullptr);
    ExpectBlockEnd();
    n->body = ParseBody({"endset"}, "set");
    Next();
    ExpectBlockEnd();
    return n;
  }

  void ParseParams(std::vector<MacroParam>* params) {
    ExpectOp("(");
    while (!IsOp(")")) {
      if (!params->empty()) ExpectOp(",");
      if (IsOp(")")) break;
      MacroParam p;
      p.name = ExpectName();
      if (SkipOp("=")) p.default_value = ParseExpression(true);
      params->push_back(std::move(p));
    }
    Next();
  }

  NodePtr ParseMacro() {
    auto n = std::make_unique<Node>(Node::Kind::kMacro, Cur().line);
    Next();
    n->name = ExpectName();
    ParseParams(&n->params);
    ExpectBlockEnd();
    int saved = loop_depth_;
    loop_depth_ = 0;
    n->body = ParseBody({"endmacro"}, "macro");
    loop_depth_ = saved;
    Next();
    if (Cur().type == Tok::kName) Next();  // {% endmacro name %}
    ExpectBlockEnd();
    return n;
  }

  NodePtr ParseCallBlock() {
    auto n = std::make_unique<Node>(Node::Kind::kCallBlock, Cur().line);
    Next();
    if (IsOp("(")) ParseParams(&n->params);
    n->expr = ParseExpression(true);
    if (n->expr->kind != Expr::Kind::kCall) Error("expected a call expression");
    ExpectBlockEnd();
    int saved = loop_depth_;
    loop_depth_ = 0;
    n->body = ParseBody({"endcall"}, "call");
    loop_depth_ = saved;
    Next();
    ExpectBlockEnd();
    return n;
  }

  NodePtr ParseFilterBlock() {
    auto n = std::make_unique<Node>(Node::Kind::kFilterBlock, Cur().line);
    Next();
    n->filter = ParseFilterChain(nullptr, /*leading_pipe=*/false);
    ExpectBlockEnd();
    n->body = ParseBody({"endfilter"}, "filter");
    Next();
    ExpectBlockEnd();
    return n;
  }

  NodePtr ParseWith() {
    auto n = std::make_unique<Node>(Node::Kind::kWith, Cur().line);
    Next();
    while (Cur().type != Tok::kBlockEnd) {
      if (!n->with_targets.empty()) ExpectOp(",");
      n->with_targets.push_back(ParseOneTarget(false));
      ExpectOp("=");
      n->with_values.push_back(ParseExpression(true));
    }
    ExpectBlockEnd();
    n->body = ParseBody({"endwith"}, "with");
    Next();
    ExpectBlockEnd();
    return n;
  }

  // ---- expressions --------------------------------------------------------------------------

  bool IsTupleEnd(std::initializer_list<const char*> extra_end) const {
    const Token& t = Cur();
    if (t.type == Tok::kVarEnd || t.type == Tok::kBlockEnd || t.type == Tok::kEof) return true;
    if (t.type == Tok::kOp && (t.text == ")" || t.text == "]" || t.text == "}")) return true;
    if (t.type == Tok::kName) {
      for (const char* e : extra_end) {
        if (t.text == e) return true;
      }
    }
    return false;
  }

  // An expression, or an implicit tuple `a, b`.
  ExprPtr ParseTuple(bool with_condexpr, std::initializer_list<const char*> extra_end,
                     bool explicit_parens = false) {
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    const int line = Cur().line;
    while (true) {
      if (!items.empty()) ExpectOp(",");
      if (IsTupleEnd(extra_end)) break;
      items.push_back(ParseExpression(with_condexpr));
      if (IsOp(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) Error("expected an expression, got " + Describe(Cur()));
    }
    auto t = std::make_unique<Expr>(Expr::Kind::kTuple, line);
    t->items = std::move(items);
    return t;
  }

  ExprPtr ParseExpression(bool with_condexpr) {
    Nest nest(this);
    ExprPtr e = ParseOr();
    if (!with_condexpr) return e;
    while (SkipName("if")) {
      auto c = Make(Expr::Kind::kCondExpr);
      c->items.push_back(ParseOr());
      c->items.push_back(std::move(e));
      c->items.push_back(SkipName("else") ? ParseExpression(true) : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr Binary(Expr::Kind k, ExprPtr l, ExprPtr r, std::string op = "") {
    auto e = Make(k);
    e->name = std::move(op);
    e->items.push_back(std::move(l));
    e->items.push_back(std::move(r));
    return e;
  }

  ExprPtr ParseOr() {
    ExprPtr l = ParseAnd();
    while (SkipName("or")) l = Binary(Expr::Kind::kOr, std::move(l), ParseAnd());
    return l;
  }

  ExprPtr ParseAnd() {
    ExprPtr l = ParseNot();
    while (SkipName("and")) l = Binary(Expr::Kind::kAnd, std::move(l), ParseNot());
    return l;
  }

  ExprPtr ParseNot() {
    if (IsName("not")) {
      Nest nest(this);
      auto e = Make(Expr::Kind::kNot);
      Next();
      e->items.push_back(ParseNot());
      return e;
    }
    return ParseCompare();
  }

  ExprPtr ParseCompare() {
    ExprPtr first = ParseMath1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().type == Tok::kOp &&
          (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" || Cur().text == "<=" ||
           Cur().text == ">" || Cur().text == ">=")) {
        op = Cur().text;
        Next();
      } else if (IsName("in")) {
        op = "in";
        Next();
      } else if (IsName("not") && Peek().type == Tok::kName && Peek().text == "in") {
        op = "notin";
        Next();
        Next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = Make(Expr::Kind::kCompare);
        cmp->items.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->items.push_back(ParseMath1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr ParseMath1() {
    ExprPtr l = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      std::string op = Cur().text;
      Next();
      l = Binary(Expr::Kind::kBinary, std::move(l), ParseConcat(), op);
    }
    return l;
  }

  ExprPtr ParseConcat() {
    ExprPtr first = ParseMath2();
    if (!IsOp("~")) return first;
    auto c = Make(Expr::Kind::kConcat);
    c->items.push_back(std::move(first));
    while (SkipOp("~")) c->items.push_back(ParseMath2());
    return c;
  }

  ExprPtr ParseMath2() {
    ExprPtr l = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      std::string op = Cur().text;
      Next();
      l = Binary(Expr::Kind::kBinary, std::move(l), ParsePow(), op);
    }
    return l;
  }

  ExprPtr ParsePow() {
    ExprPtr l = ParseUnary(true);
    while (SkipOp("**")) l = Binary(Expr::Kind::kBinary, std::move(l), ParseUnary(true), "**");
    return l;
  }

  ExprPtr ParseUnary(bool with_filter) {
    Nest nest(this);
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      node = Make(IsOp("-") ? Expr::Kind::kNeg : Expr::Kind::kPos);
      Next();
      node->items.push_back(ParseUnary(false));
    } else {
      node = ParsePostfix(ParsePrimary());
    }
    return with_filter ? ParseFilterExpr(std::move(node)) : std::move(node);
  }

  ExprPtr ParsePrimary() {
    const Token& t = Cur();
    switch (t.type) {
      case Tok::kName: {
        static const std::pair<const char*, int> kConsts[] = {
            {"true", 1}, {"True", 1}, {"false", 0}, {"False", 0}, {"none", 2}, {"None", 2}};
        for (const auto& [word, v] : kConsts) {
          if (t.text == word) {
            auto e = Make(Expr::Kind::kConst);
            e->value = v == 2 ? Value::None() : Value(v == 1);
            Next();
            return e;
          }
        }
        auto e = Make(Expr::Kind::kName);
        e->name = t.text;
        Next();
        return e;
      }
      case Tok::kString: {
        auto e = Make(Expr::Kind::kConst);
        std::string s;
        while (Cur().type == Tok::kString) {  // adjacent literals concatenate
          s += Cur().text;
          Next();
        }
        e->value = Value(std::move(s));
        return e;
      }
      case Tok::kInt:
      case Tok::kFloat: {
        auto e = Make(Expr::Kind::kConst);
        e->value = t.value;
        Next();
        return e;
      }
      case Tok::kOp:
        if (t.text == "(") {
          Next();
          ExprPtr e = ParseTuple(true, {}, /*explicit_parens=*/true);
          ExpectOp(")");
          return e;
        }
        if (t.text == "[") return ParseListLiteral();
        if (t.text == "{") return ParseDictLiteral();
        break;
      default: break;
    }
    Error("unexpected " + Describe(t));
  }

  ExprPtr ParseListLiteral() {
    auto e = Make(Expr::Kind::kList);
    Next();
    while (!IsOp("]")) {
      if (!e->items.empty()) ExpectOp(",");
      if (IsOp("]")) break;
      e->items.push_back(ParseExpression(true));
    }
    Next();
    return e;
  }

  ExprPtr ParseDictLiteral() {
    auto e = Make(Expr::Kind::kDict);
    Next();
    while (!IsOp("}")) {
      if (!e->items.empty()) ExpectOp(",");
      if (IsOp("}")) break;
      e->items.push_back(ParseExpression(true));
      ExpectOp(":");
      e->items.push_back(ParseExpression(true));
    }
    Next();
    return e;
  }

  ExprPtr ParsePostfix(ExprPtr node) {
    while (true) {
      if (IsOp(".")) {
        Next();
        if (Cur().type == Tok::kName) {
          auto g = Make(Expr::Kind::kGetAttr);
          g->name = Cur().text;
          g->items.push_back(std::move(node));
          node = std::move(g);
        } else if (Cur().type == Tok::kInt) {
          auto g = Make(Expr::Kind::kGetItem);
          g->items.push_back(std::move(node));
          auto c = Make(Expr::Kind::kConst);
          c->value = Cur().value;
          g->items.push_back(std::move(c));
          node = std::move(g);
        } else {
          Error("expected an attribute name after '.'");
        }
        Next();
      } else if (IsOp("[")) {
        Next();
        node = ParseSubscript(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseSubscript(ExprPtr obj) {
    Nest nest(this);
    ExprPtr parts[3];
    bool is_slice = false;
    int idx = 0;
    while (!IsOp("]")) {
      if (IsOp(":")) {
        is_slice = true;
        if (++idx > 2) Error("invalid slice");
        Next();
        continue;
      }
      if (parts[idx]) Error("expected ']' or ':', got " + Describe(Cur()));
      parts[idx] = ParseExpression(true);
      if (IsOp(",")) Error("tuple subscripts are not supported");
    }
    Next();
    if (!is_slice) {
      if (!parts[0]) Error("expected a subscript");
      auto g = Make(Expr::Kind::kGetItem);
      g->items.push_back(std::move(obj));
      g->items.push_back(std::move(parts[0]));
      return g;
    }
    auto s = Make(Expr::Kind::kSlice);
    s->items.push_back(std::move(obj));
    for (auto& p : parts) s->items.push_back(std::move(p));
    return s;
  }

  void ParseCallArgs(Expr* e) {
    ExpectOp("(");
    bool first = true;
    while (!IsOp(")")) {
      if (!first) ExpectOp(",");
      first = false;
      if (IsOp(")")) break;
      if (SkipOp("**")) {
        e->star_kwargs = ParseExpression(true);
      } else if (SkipOp("*")) {
        e->star_args = ParseExpression(true);
      } else if (Cur().type == Tok::kName && Peek().type == Tok::kOp && Peek().text == "=") {
        std::string key = Cur().text;
        Next();
        Next();
        e->kwargs.emplace_back(std::move(key), ParseExpression(true));
      } else {
        if (!e->kwargs.empty()) Error("positional argument after keyword argument");
        e->args.push_back(ParseExpression(true));
      }
    }
    Next();
  }

  ExprPtr ParseCall(ExprPtr callee) {
    auto c = Make(Expr::Kind::kCall);
    c->items.push_back(std::move(callee));
    ParseCallArgs(c.get());
    return c;
  }

  // `| name(args) | name2 ...` applied to `operand` (null for filter blocks / block sets).
  ExprPtr ParseFilterChain(ExprPtr operand, bool leading_pipe = true) {
    bool first = true;
    while (true) {
      if (leading_pipe || !first) {
        if (!SkipOp("|")) break;
      }
      first = false;
      operand = ParseOneFilter(std::move(operand));
    }
    return operand;
  }

  ExprPtr ParseOneFilter(ExprPtr operand) {
    auto f = Make(Expr::Kind::kFilter);
    f->name = ExpectName();
    while (SkipOp(".")) f->name += "." + ExpectName();
    f->items.push_back(std::move(operand));
    if (IsOp("(")) ParseCallArgs(f.get());
    return f;
  }

  ExprPtr ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (SkipOp("|")) {
        node = ParseOneFilter(std::move(node));
      } else if (IsName("is")) {
        node = ParseTest(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseTest(ExprPtr node) {
    Next();  // is
    auto t = Make(Expr::Kind::kTest);
    t->negated = SkipName("not");
    t->name = ExpectName();
    while (SkipOp(".")) t->name += "." + ExpectName();
    t->items.push_back(std::move(node));
    const Token& c = Cur();
    if (IsOp("(")) {
      ParseCallArgs(t.get());
    } else if ((c.type == Tok::kName || c.type == Tok::kString || c.type == Tok::kInt ||
                c.type == Tok::kFloat || IsOp("[") || IsOp("{")) &&
               !(c.type == Tok::kName &&
                 (c.text == "else" || c.text == "or" || c.text == "and" || c.text == "if"))) {
      if (IsName("is")) Error("You cannot chain multiple tests with is");
      t->args.push_back(ParsePostfix(ParsePrimary()));
    }
    return t;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

std::unique_ptr<TemplateProgram> ParseTemplate(std::string_view source) {
  return Parser(Tokenize(source)).Run();
}

}  // namespace tessera::text::jinja
