#include "pattern.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace tessera::text::internal {
namespace {

// What \w means in each dialect, as class members (without the brackets).
constexpr std::string_view kOnigWord = R"(\p{L}\p{M}\p{Nd}\p{Pc})";
constexpr std::string_view kRustWord = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control})";
constexpr std::string_view kHexDigit = "0-9a-fA-F";

std::string PcreError(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

RegexScratch::RegexScratch() = default;

RegexScratch::~RegexScratch() {
  if (match_data_ != nullptr) pcre2_match_data_free(match_data_);
  if (match_context_ != nullptr) pcre2_match_context_free(match_context_);
  if (jit_stack_ != nullptr) pcre2_jit_stack_free(jit_stack_);
}

pcre2_match_data* RegexScratch::match_data() {
  if (match_data_ == nullptr) match_data_ = pcre2_match_data_create(32, nullptr);
  return match_data_;
}

pcre2_match_context* RegexScratch::match_context() {
  if (match_context_ == nullptr) {
    match_context_ = pcre2_match_context_create(nullptr);
    // The default 32 KiB JIT stack overflows on long whitespace runs with lookaheads.
    jit_stack_ = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
    pcre2_jit_stack_assign(match_context_, nullptr, jit_stack_);
  }
  return match_context_;
}

std::string TranslateRegex(std::string_view p, RegexSyntax syntax) {
  const std::string_view word = syntax == RegexSyntax::kOniguruma ? kOnigWord : kRustWord;
  std::string out;
  out.reserve(p.size() + 32);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      auto emit_set = [&](std::string_view members, bool negate) {
        if (in_class) {
          out.append(members);
        } else {
          out.append(negate ? "[^" : "[").append(members).append("]");
        }
      };
      if (e == 's') {
        out.append(R"(\p{White_Space})");
      } else if (e == 'S') {
        out.append(R"(\P{White_Space})");
      } else if (e == 'w') {
        emit_set(word, false);
      } else if (e == 'W' && !in_class) {
        emit_set(word, true);
      } else if (e == 'h' && syntax == RegexSyntax::kOniguruma) {
        emit_set(kHexDigit, false);
      } else if (e == 'H' && syntax == RegexSyntax::kOniguruma && !in_class) {
        emit_set(kHexDigit, true);
      } else {
        out.push_back('\\');
        out.push_back(e);
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal member in both engines.
      if (i + 1 < p.size() && p[i + 1] == '^') out.push_back(p[++i]);
      if (i + 1 < p.size() && p[i + 1] == ']') out.push_back(p[++i]);
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      const size_t close = p.find(":]", i + 2);  // POSIX class such as [:alpha:]
      if (close != std::string_view::npos) {
        out.append(p.substr(i, close + 2 - i));
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
  }
  return out;
}

StatusOr<std::shared_ptr<const Regex>> Regex::Compile(std::string_view pattern,
                                                      RegexSyntax syntax) {
  const std::string translated = TranslateRegex(pattern, syntax);
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP, &err, &err_offset, nullptr);
  if (code == nullptr) {
    return InvalidArgument("cannot compile regex '" + std::string(pattern) + "' (as '" +
                           translated + "'): " + PcreError(err) + " at offset " +
                           std::to_string(err_offset));
  }
  // JIT is an optimization only; the interpreter gives the same matches if it is unavailable.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::shared_ptr<const Regex>(new Regex(code));
}

Regex::~Regex() {
  pcre2_code_free(code_);
}

Status Regex::FindAll(std::string_view s, RegexScratch* scratch,
                      FunctionRef<Status(size_t, size_t)> emit) const {
  pcre2_match_data* md = scratch->match_data();
  pcre2_match_context* mctx = scratch->match_context();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t pos = 0;
  bool have_last = false;
  size_t last_end = 0;
  while (pos <= s.size()) {
    const int rc = pcre2_match(code_, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md, mctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) return Internal("regex match failed: " + PcreError(rc));
    // Copy the bounds out first: `emit` may run other regexes on the same match data.
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t ms = ov[0], me = ov[1];
    if (ms == me && have_last && me == last_end) {
      // No empty match right after the previous one: step one char and search again.
      if (pos >= s.size()) break;
      pos += Utf8Len(static_cast<unsigned char>(s[pos]));
      continue;
    }
    have_last = true;
    last_end = me;
    pos = me;
    TSR_RETURN_IF_ERROR(emit(ms, me));
  }
  return OkStatus();
}

Status Regex::FindAll(std::string_view s, RegexScratch* scratch,
                      std::vector<std::pair<size_t, size_t>>* out) const {
  return FindAll(s, scratch, [out](size_t start, size_t end) {
    out->emplace_back(start, end);
    return OkStatus();
  });
}

StatusOr<Pattern> Pattern::FromJson(const nlohmann::json& j) {
  if (j.is_object() && j.contains("String") && j["String"].is_string()) {
    return Literal(j["String"].get<std::string>());
  }
  if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
    return FromRegex(j["Regex"].get<std::string>(), RegexSyntax::kOniguruma);
  }
  return InvalidArgument("pattern must be {\"String\": ...} or {\"Regex\": ...}, got " + j.dump());
}

Pattern Pattern::Literal(std::string s) {
  Pattern p;
  p.literal_ = std::move(s);
  return p;
}

StatusOr<Pattern> Pattern::FromRegex(std::string_view re, RegexSyntax syntax) {
  Pattern p;
  TSR_ASSIGN_OR_RETURN(p.regex_, Regex::Compile(re, syntax));
  return p;
}

Status Pattern::FindMatches(std::string_view s, RegexScratch* scratch,
                            FunctionRef<Status(const Span&)> emit) const {
  if (s.empty()) return emit(Span{0, 0, false});
  size_t prev = 0;
  auto add = [&](size_t start, size_t end) -> Status {
    if (prev != start) TSR_RETURN_IF_ERROR(emit(Span{prev, start, false}));
    prev = end;
    return emit(Span{start, end, true});
  };
  if (regex_ == nullptr) {
    if (literal_.empty()) return emit(Span{0, s.size(), false});
    for (size_t at = s.find(literal_); at != std::string_view::npos;
         at = s.find(literal_, at + literal_.size())) {
      TSR_RETURN_IF_ERROR(add(at, at + literal_.size()));
    }
  } else {
    TSR_RETURN_IF_ERROR(regex_->FindAll(s, scratch, add));
  }
  if (prev != s.size()) return emit(Span{prev, s.size(), false});
  return OkStatus();
}

Status Pattern::FindMatches(std::string_view s, RegexScratch* scratch,
                            std::vector<Span>* out) const {
  out->clear();
  return FindMatches(s, scratch, [out](const Span& span) {
    out->push_back(span);
    return OkStatus();
  });
}

StatusOr<SplitBehavior> ParseSplitBehavior(std::string_view name) {
  // Serialized as "Isolated"; older hand-written files use "isolated".
  std::string lower;
  for (char c : name) {
    if (c != '_') lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (lower == "removed") return SplitBehavior::kRemoved;
  if (lower == "isolated") return SplitBehavior::kIsolated;
  if (lower == "mergedwithprevious") return SplitBehavior::kMergedWithPrevious;
  if (lower == "mergedwithnext") return SplitBehavior::kMergedWithNext;
  if (lower == "contiguous") return SplitBehavior::kContiguous;
  return InvalidArgument("unknown split behavior '" + std::string(name) + "'");
}

Status BehaviorSplitter::Flush() {
  if (!has_pending_) return OkStatus();
  has_pending_ = false;
  return emit_(pending_start_, pending_end_);
}

Status BehaviorSplitter::Add(const Span& span) {
  const bool prev_match = prev_match_;
  prev_match_ = span.match;
  switch (behavior_) {
    case SplitBehavior::kIsolated: return emit_(span.start, span.end);
    case SplitBehavior::kRemoved: return span.match ? OkStatus() : emit_(span.start, span.end);
    case SplitBehavior::kContiguous:
    case SplitBehavior::kMergedWithPrevious: {
      const bool extend = behavior_ == SplitBehavior::kContiguous ? span.match == prev_match
                                                                  : span.match && !prev_match;
      if (extend && has_pending_) {
        pending_end_ = span.end;
        return OkStatus();
      }
      TSR_RETURN_IF_ERROR(Flush());
      has_pending_ = true;
      pending_start_ = span.start;
      pending_end_ = span.end;
      return OkStatus();
    }
    case SplitBehavior::kMergedWithNext: {
      // A match waits for the next span: a following non-match absorbs it.
      if (!span.match) {
        const size_t start = has_pending_ ? pending_start_ : span.start;
        has_pending_ = false;
        return emit_(start, span.end);
      }
      TSR_RETURN_IF_ERROR(Flush());
      has_pending_ = true;
      pending_start_ = span.start;
      pending_end_ = span.end;
      return OkStatus();
    }
  }
  return OkStatus();
}

Status BehaviorSplitter::Finish() {
  return Flush();
}

void ApplyBehavior(const std::vector<Span>& spans, SplitBehavior behavior,
                   std::vector<std::pair<size_t, size_t>>* pieces) {
  pieces->clear();
  auto collect = [pieces](size_t start, size_t end) {
    pieces->emplace_back(start, end);
    return OkStatus();
  };
  BehaviorSplitter splitter(behavior, collect);
  for (const Span& s : spans) (void)splitter.Add(s);
  (void)splitter.Finish();
}

}  // namespace tessera::text::internal
