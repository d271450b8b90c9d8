// Patterns and split behaviours: the matching layer under Split, Replace and friends.
//
// Regexes in tokenizer.json are written for Oniguruma; Regex::Compile translates the few
// constructs whose meaning differs in PCRE2 (\s, \w, \h) and compiles with UTF+UCP and JIT.
#ifndef TESSERA_TEXT_TOKENIZER_PATTERN_H_
#define TESSERA_TEXT_TOKENIZER_PATTERN_H_

#include <cstddef>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "function_ref.h"
#include "tessera/core/status.h"

struct pcre2_real_code_8;
struct pcre2_real_match_data_8;
struct pcre2_real_match_context_8;
struct pcre2_real_jit_stack_8;

namespace tessera::text::internal {

// Per-call matching state (PCRE2 match data and JIT stack). Not thread-safe: each Encode call
// owns one, which keeps the shared Regex objects immutable.
class RegexScratch {
 public:
  RegexScratch();
  ~RegexScratch();
  RegexScratch(const RegexScratch&) = delete;
  RegexScratch& operator=(const RegexScratch&) = delete;

  pcre2_real_match_data_8* match_data();
  pcre2_real_match_context_8* match_context();

 private:
  pcre2_real_match_data_8* match_data_ = nullptr;
  pcre2_real_match_context_8* match_context_ = nullptr;
  pcre2_real_jit_stack_8* jit_stack_ = nullptr;
};

// A byte range of the input; `match` tells whether the pattern matched it.
struct Span {
  size_t start;
  size_t end;
  bool match;
};

enum class RegexSyntax {
  kOniguruma,  // patterns from tokenizer.json
  kRustRegex,  // patterns the Rust code hard-codes with the `regex` crate
};

// An immutable compiled regex. Thread-safe for concurrent matching (state lives in scratch).
class Regex {
 public:
  static StatusOr<std::shared_ptr<const Regex>> Compile(std::string_view pattern,
                                                        RegexSyntax syntax);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls emit(start, end) for each non-overlapping match in `s`, left to right (empty
  // matches allowed, but never right after the previous match, as Rust's find_iter does).
  // Stops at the first non-OK status `emit` returns. `emit` may itself use `scratch`.
  Status FindAll(std::string_view s, RegexScratch* scratch,
                 FunctionRef<Status(size_t, size_t)> emit) const;
  Status FindAll(std::string_view s, RegexScratch* scratch,
                 std::vector<std::pair<size_t, size_t>>* out) const;

 private:
  explicit Regex(pcre2_real_code_8* code) : code_(code) {}
  pcre2_real_code_8* code_;
};

// Rewrites an Oniguruma / Rust-regex pattern into PCRE2 syntax with the same meaning.
std::string TranslateRegex(std::string_view pattern, RegexSyntax syntax);

// tokenizers' Pattern: a literal string or a regex ({"String": ...} / {"Regex": ...} in JSON).
class Pattern {
 public:
  static StatusOr<Pattern> FromJson(const nlohmann::json& j);
  static Pattern Literal(std::string s);
  static StatusOr<Pattern> FromRegex(std::string_view re, RegexSyntax syntax);

  // Spans covering all of `s`, alternating gaps and matches, as tokenizers' find_matches,
  // streamed to `emit` in order.
  Status FindMatches(std::string_view s, RegexScratch* scratch,
                     FunctionRef<Status(const Span&)> emit) const;
  Status FindMatches(std::string_view s, RegexScratch* scratch, std::vector<Span>* out) const;

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
};

// Spans where each char satisfying `pred` is its own match (tokenizers' char patterns),
// streamed to emit(const Span&) -> Status.
template <typename Pred, typename Emit>
Status FindCharMatches(std::string_view s, Pred pred, Emit emit);
template <typename Pred>
void FindCharMatches(std::string_view s, Pred pred, std::vector<Span>* out) {
  out->clear();
  (void)FindCharMatches(s, pred, [out](const Span& sp) {
    out->push_back(sp);
    return OkStatus();
  });
}

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
StatusOr<SplitBehavior> ParseSplitBehavior(std::string_view name);

// Streaming form of tokenizers' NormalizedString::split: fed the spans of find_matches in order,
// it emits the [start, end) pieces to keep (possibly empty; callers drop those). One pending
// piece is enough state for every behaviour, so no whole-text vectors are needed.
class BehaviorSplitter {
 public:
  // `emit` is referenced, not copied: it must outlive the splitter (name the lambda first).
  BehaviorSplitter(SplitBehavior behavior, FunctionRef<Status(size_t, size_t)> emit)
      : behavior_(behavior), emit_(emit) {}
  Status Add(const Span& span);
  Status Finish();

 private:
  Status Flush();
  SplitBehavior behavior_;
  FunctionRef<Status(size_t, size_t)> emit_;
  bool has_pending_ = false;
  size_t pending_start_ = 0, pending_end_ = 0;
  bool prev_match_ = false;
};

// Whole-vector convenience over BehaviorSplitter.
void ApplyBehavior(const std::vector<Span>& spans, SplitBehavior behavior,
                   std::vector<std::pair<size_t, size_t>>* pieces);

}  // namespace tessera::text::internal

#include "unicode.h"

namespace tessera::text::internal {

template <typename Pred, typename Emit>
Status FindCharMatches(std::string_view s, Pred pred, Emit emit) {
  if (s.empty()) return emit(Span{0, 0, false});
  size_t last = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8Len(static_cast<unsigned char>(s[i]));
    if (pred(DecodeAt(s, i))) {
      if (last < i) TSR_RETURN_IF_ERROR(emit(Span{last, i, false}));
      TSR_RETURN_IF_ERROR(emit(Span{i, i + n, true}));
      last = i + n;
    }
    i += n;
  }
  if (last < s.size()) return emit(Span{last, s.size(), false});
  return OkStatus();
}

}  // namespace tessera::text::internal

#endif  // TESSERA_TEXT_TOKENIZER_PATTERN_H_
