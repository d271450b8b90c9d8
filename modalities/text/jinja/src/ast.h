// The parse tree: expressions (Expr) and statements (Node). Immutable after parsing, shared by all
// renders of a template.
#ifndef TESSERA_TEXT_JINJA_SRC_AST_H_
#define TESSERA_TEXT_JINJA_SRC_AST_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "value.h"

namespace tessera::text::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kConst,     // value
    kName,      // name
    kList,      // items
    kTuple,     // items
    kDict,      // items as key, value, key, value...
    kGetAttr,   // items[0] . name
    kGetItem,   // items[0] [ items[1] ]
    kSlice,     // items[0] [ a : b : c ]; items[1..3] may be null
    kCall,      // items[0] ( args, kwargs )
    kFilter,    // items[0] (may be null in a filter block) | name ( args, kwargs )
    kTest,      // items[0] is [not] name ( args, kwargs ); negated
    kNeg,       // - items[0]
    kPos,       // + items[0]
    kNot,       // not items[0]
    kAnd,       // items[0] and items[1]
    kOr,        // items[0] or items[1]
    kBinary,    // items[0] op items[1]: + - * / // % **
    kConcat,    // items joined with ~
    kCompare,   // items[0] ops[i] items[i+1] ...
    kCondExpr,  // items[1] if items[0] else items[2] (items[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value value;                 // kConst
  std::string name;            // kName, kGetAttr, kFilter, kTest, kBinary (operator)
  std::vector<ExprPtr> items;  // operands, see above
  std::vector<ExprPtr> args;   // kCall / kFilter / kTest positional arguments
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  ExprPtr star_args, star_kwargs;  // *args / **kwargs in a call
  std::vector<std::string> ops;    // kCompare operators: == != < <= > >= in notin
  bool negated = false;            // kTest

  Expr(Kind k, int l) : kind(k), line(l) {}
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

// An assignment target: a name, a namespace attribute (ns.attr) or a tuple of targets.
struct Target {
  enum class Kind { kName, kAttr, kTuple } kind = Kind::kName;
  std::string name;  // kName: variable; kAttr: the namespace variable
  std::string attr;  // kAttr
  std::vector<Target> items;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Node {
  enum class Kind {
    kText,         // text
    kOutput,       // {{ expr }}
    kIf,           // conds[i] -> bodies[i]; else_body
    kFor,          // target in expr [if cond] body [else else_body]
    kSet,          // target = expr
    kSetBlock,     // target = rendered body, piped through filter (kFilter chain, may be null)
    kMacro,        // name(params) body
    kCallBlock,    // {% call(params) expr %} body
    kFilterBlock,  // body piped through filter
    kBreak,
    kContinue,
    kWith,   // assignments (targets/values) then body in a new scope
    kScope,  // body in place (generation blocks)
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;    // output / for iterable / set value / call expr
  ExprPtr cond;    // for filter condition
  ExprPtr filter;  // set-block / filter-block filter chain (leftmost operand is null)
  Target target;
  std::vector<ExprPtr> conds;
  std::vector<Body> bodies;  // if branches
  Body body, else_body;
  std::vector<MacroParam> params;
  std::string name;  // macro name
  bool recursive = false;
  std::vector<Target> with_targets;
  std::vector<ExprPtr> with_values;

  Node(Kind k, int l) : kind(k), line(l) {}
};

// What Parse produces. Owned by JinjaTemplate through a shared_ptr.
struct TemplateProgram {
  Body body;
};

}  // namespace tessera::text::jinja

#endif  // TESSERA_TEXT_JINJA_SRC_AST_H_
