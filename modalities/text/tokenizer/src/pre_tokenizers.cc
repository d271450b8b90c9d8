// Pre-tokenizers: tokenizers/src/pre_tokenizers/* semantics on plain strings, streamed.
#include <nlohmann/json.hpp>

#include "components.h"
#include "unicode.h"

namespace tessera::text::internal {
namespace {

// The GPT-2 split regex the ByteLevel pre-tokenizer hard-codes (Oniguruma syntax).
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Sends p.text[start, end) on as a piece (dropping empty ones).
Status EmitRange(const Piece& p, size_t start, size_t end, PieceSink sink) {
  if (end <= start) return OkStatus();
  return sink(Piece{p.text.substr(start, end - start), p.first && start == 0});
}

// Splits on every char satisfying `pred`, with `behavior`.
template <typename Pred>
Status SplitOnChars(const Piece& p, Pred pred, SplitBehavior behavior, PieceSink sink) {
  auto emit = [&](size_t start, size_t end) { return EmitRange(p, start, end, sink); };
  BehaviorSplitter splitter(behavior, emit);
  TSR_RETURN_IF_ERROR(
      FindCharMatches(p.text, pred, [&](const Span& span) { return splitter.Add(span); }));
  return splitter.Finish();
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  Status PreTokenize(Piece&& p, EncodeScratch* scratch, PieceSink sink) const override {
    auto emit = [&](size_t start, size_t end) { return EmitRange(p, start, end, sink); };
    BehaviorSplitter splitter(behavior_, emit);
    TSR_RETURN_IF_ERROR(pattern_.FindMatches(p.text, &scratch->regex, [&](const Span& span) {
      return splitter.Add(Span{span.start, span.end, span.match != invert_});
    }));
    return splitter.Finish();
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::optional<Pattern> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  Status PreTokenize(Piece&& p, EncodeScratch* scratch, PieceSink sink) const override {
    if (p.text.empty()) return OkStatus();
    if (add_prefix_space_ && p.text[0] != ' ') p.text.insert(0, 1, ' ');
    // Every byte becomes its printable stand-in char (GPT-2's bytes_to_unicode).
    auto emit_mapped = [&](size_t start, size_t end) -> Status {
      if (end <= start) return OkStatus();
      Piece out{std::string(), p.first && start == 0};
      out.text.reserve((end - start) * 2);
      for (size_t i = start; i < end; ++i) {
        out.text.append(ByteToCharUtf8(static_cast<uint8_t>(p.text[i])));
      }
      return sink(std::move(out));
    };
    if (!regex_) return emit_mapped(0, p.text.size());
    return regex_->FindMatches(p.text, &scratch->regex, [&](const Span& span) {
      return emit_mapped(span.start, span.end);  // Isolated: every span is a piece
    });
  }

 private:
  bool add_prefix_space_;
  std::optional<Pattern> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement), scheme_(scheme), split_(split) {
    AppendUtf8(&rep_, replacement);
  }
  Status PreTokenize(Piece&& in, EncodeScratch*, PieceSink sink) const override {
    if (in.text.empty()) return OkStatus();
    Piece p{std::string(), in.first};
    p.text.reserve(in.text.size() + 8);
    for (char c : in.text) {
      if (c == ' ') {
        p.text.append(rep_);
      } else {
        p.text.push_back(c);
      }
    }
    const bool starts_with_rep = p.text.compare(0, rep_.size(), rep_) == 0;
    const bool prepend =
        scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.first);
    if (prepend && !starts_with_rep) p.text.insert(0, rep_);
    if (!split_) return sink(std::move(p));
    const char32_t rep = replacement_;
    return SplitOnChars(
        p, [rep](char32_t c) { return c == rep; }, SplitBehavior::kMergedWithNext, sink);
  }

 private:
  char32_t replacement_;
  std::string rep_;
  PrependScheme scheme_;
  bool split_;
};

// tokenizers' Whitespace: keeps the matches of \w+|[^\w\s]+ (Rust regex classes).
class WhitespacePreTokenizer final : public PreTokenizer {
 public:
  Status PreTokenize(Piece&& p, EncodeScratch*, PieceSink sink) const override {
    const std::string& s = p.text;
    enum Kind { kSpace, kWord, kOther };
    auto kind_at = [&](size_t i) {
      const char32_t c = DecodeAt(s, i);
      return IsWordChar(c) ? kWord : IsWhitespace(c) ? kSpace : kOther;
    };
    for (size_t i = 0; i < s.size();) {
      const Kind k = kind_at(i);
      size_t j = i + Utf8Len(static_cast<unsigned char>(s[i]));
      if (k != kSpace) {
        while (j < s.size() && kind_at(j) == k) j += Utf8Len(static_cast<unsigned char>(s[j]));
        TSR_RETURN_IF_ERROR(EmitRange(p, i, j, sink));
      }
      i = j;
    }
    return OkStatus();
  }
};

class CharSplitPreTokenizer final : public PreTokenizer {
 public:
  enum class Kind { kWhitespace, kPunctuation, kDigits, kDelimiter, kBert };
  CharSplitPreTokenizer(Kind kind, SplitBehavior behavior, char32_t delimiter = 0)
      : kind_(kind), behavior_(behavior), delimiter_(delimiter) {}
  Status PreTokenize(Piece&& p, EncodeScratch*, PieceSink sink) const override {
    switch (kind_) {
      case Kind::kWhitespace: return SplitOnChars(p, IsWhitespace, behavior_, sink);
      case Kind::kPunctuation: return SplitOnChars(p, IsBertPunctuation, behavior_, sink);
      case Kind::kDigits: return SplitOnChars(p, IsNumeric, behavior_, sink);
      case Kind::kDelimiter: {
        const char32_t d = delimiter_;
        return SplitOnChars(
            p, [d](char32_t c) { return c == d; }, behavior_, sink);
      }
      case Kind::kBert:
        return SplitOnChars(p, IsWhitespace, SplitBehavior::kRemoved, [&](Piece&& word) {
          return SplitOnChars(word, IsBertPunctuation, SplitBehavior::kIsolated, sink);
        });
    }
    return OkStatus();
  }

 private:
  Kind kind_;
  SplitBehavior behavior_;
  char32_t delimiter_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  Status PreTokenize(Piece&& p, EncodeScratch* scratch, PieceSink sink) const override {
    return From(0, std::move(p), scratch, sink);
  }

 private:
  // Runs parts_[i..] on one piece, feeding each output of part i into part i + 1.
  Status From(size_t i, Piece&& p, EncodeScratch* scratch, PieceSink sink) const {
    if (i == parts_.size()) return sink(std::move(p));
    return parts_[i]->PreTokenize(
        std::move(p), scratch, [&](Piece&& q) { return From(i + 1, std::move(q), scratch, sink); });
  }
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

StatusOr<PrependScheme> ParsePrependScheme(const nlohmann::json& j) {
  // Files before prepend_scheme existed carry add_prefix_space instead.
  TSR_ASSIGN_OR_RETURN(bool add_prefix_space, JsonBool(j, "add_prefix_space", true));
  auto it = j.find("prepend_scheme");
  if (it == j.end() || it->is_null()) {
    return add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  const std::string s = it->is_string() ? it->get<std::string>() : "";
  if (s == "always") return add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
  if (s == "first") return PrependScheme::kFirst;
  if (s == "never") return PrependScheme::kNever;
  return InvalidArgument("unknown prepend_scheme '" + s + "'");
}

StatusOr<std::unique_ptr<PreTokenizer>> MetaspaceFromJson(const nlohmann::json& j) {
  TSR_ASSIGN_OR_RETURN(char32_t rep, JsonChar(j, "replacement"));
  TSR_ASSIGN_OR_RETURN(PrependScheme scheme, ParsePrependScheme(j));
  TSR_ASSIGN_OR_RETURN(bool split, JsonBool(j, "split", true));
  return std::unique_ptr<PreTokenizer>(new MetaspacePreTokenizer(rep, scheme, split));
}

StatusOr<std::unique_ptr<PreTokenizer>> ByteLevelFromJson(const nlohmann::json& j) {
  TSR_ASSIGN_OR_RETURN(bool add_prefix_space, JsonBool(j, "add_prefix_space", true));
  TSR_ASSIGN_OR_RETURN(bool use_regex, JsonBool(j, "use_regex", true));
  std::optional<Pattern> regex;
  if (use_regex) {
    TSR_ASSIGN_OR_RETURN(regex, Pattern::FromRegex(kGpt2Regex, RegexSyntax::kOniguruma));
  }
  return std::unique_ptr<PreTokenizer>(new ByteLevelPreTokenizer(add_prefix_space, regex));
}

StatusOr<std::unique_ptr<PreTokenizer>> SplitFromJson(const nlohmann::json& j) {
  if (!j.contains("pattern")) return InvalidArgument("Split pre-tokenizer without a pattern");
  TSR_ASSIGN_OR_RETURN(Pattern pattern, Pattern::FromJson(j["pattern"]));
  TSR_ASSIGN_OR_RETURN(std::string behavior_name, JsonString(j, "behavior"));
  TSR_ASSIGN_OR_RETURN(SplitBehavior behavior, ParseSplitBehavior(behavior_name));
  TSR_ASSIGN_OR_RETURN(bool invert, JsonBool(j, "invert", false));
  return std::unique_ptr<PreTokenizer>(new SplitPreTokenizer(std::move(pattern), behavior, invert));
}

}  // namespace

Status PreTokenizeAll(const PreTokenizer& pre, std::vector<Piece>* pieces, EncodeScratch* scratch) {
  std::vector<Piece> out;
  for (Piece& p : *pieces) {
    TSR_RETURN_IF_ERROR(pre.PreTokenize(std::move(p), scratch, [&](Piece&& q) {
      if (!q.text.empty()) out.push_back(std::move(q));
      return OkStatus();
    }));
  }
  *pieces = std::move(out);
  return OkStatus();
}

StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(const nlohmann::json& j) {
  using Kind = CharSplitPreTokenizer::Kind;
  if (j.is_null()) return std::unique_ptr<PreTokenizer>();
  if (!j.is_object()) return InvalidArgument("pre_tokenizer must be an object");
  const std::string type = JsonType(j);
  std::unique_ptr<PreTokenizer> p;
  if (type == "ByteLevel") return ByteLevelFromJson(j);
  if (type == "Metaspace") return MetaspaceFromJson(j);
  if (type == "Split") return SplitFromJson(j);
  if (type == "Whitespace") {
    p.reset(new WhitespacePreTokenizer());
  } else if (type == "WhitespaceSplit") {
    p.reset(new CharSplitPreTokenizer(Kind::kWhitespace, SplitBehavior::kRemoved));
  } else if (type == "BertPreTokenizer") {
    p.reset(new CharSplitPreTokenizer(Kind::kBert, SplitBehavior::kRemoved));
  } else if (type == "Punctuation") {
    SplitBehavior behavior = SplitBehavior::kIsolated;
    if (j.contains("behavior") && j["behavior"].is_string()) {
      TSR_ASSIGN_OR_RETURN(behavior, ParseSplitBehavior(j["behavior"].get<std::string>()));
    }
    p.reset(new CharSplitPreTokenizer(Kind::kPunctuation, behavior));
  } else if (type == "Digits") {
    TSR_ASSIGN_OR_RETURN(bool individual, JsonBool(j, "individual_digits", false));
    p.reset(new CharSplitPreTokenizer(
        Kind::kDigits, individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous));
  } else if (type == "CharDelimiterSplit") {
    TSR_ASSIGN_OR_RETURN(char32_t d, JsonChar(j, "delimiter"));
    p.reset(new CharSplitPreTokenizer(Kind::kDelimiter, SplitBehavior::kRemoved, d));
  } else if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) return InvalidArgument("Sequence without pretokenizers");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& sub : *it) {
      TSR_ASSIGN_OR_RETURN(auto part, PreTokenizerFromJson(sub));
      if (part) parts.push_back(std::move(part));
    }
    p.reset(new SequencePreTokenizer(std::move(parts)));
  } else {
    return Unimplemented("pre_tokenizer type '" + type + "' is not supported");
  }
  return p;
}

}  // namespace tessera::text::internal
