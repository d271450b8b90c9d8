// Normalizers: tokenizers/src/normalizers/* semantics on plain strings (no offset tracking).
#include <nlohmann/json.hpp>

#include "components.h"
#include "unicode.h"

namespace tessera::text::internal {
namespace {

// Rebuilds `t` char by char; `fn(c, &out)` appends the replacement of c (possibly nothing).
// Clears first_kept when the first char produced nothing.
template <typename Fn>
void MapChars(NormText* t, Fn fn) {
  const std::string& s = t->text;
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8Len(static_cast<unsigned char>(s[i]));
    const size_t before = out.size();
    fn(DecodeAt(s, i), &out);
    if (i == 0 && out.size() == before) t->first_kept = false;
    i += n;
  }
  t->text = std::move(out);
}

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  Status Normalize(NormText* t, EncodeScratch*) const override {
    t->text = internal::Normalize(t->text, form_);
    return OkStatus();
  }

 private:
  NormalForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  Status Normalize(NormText* t, EncodeScratch*) const override {
    MapChars(t, [](char32_t c, std::string* out) { AppendLowercase(out, c); });
    return OkStatus();
  }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  Status Normalize(NormText* t, EncodeScratch*) const override {
    const std::string& s = t->text;
    size_t begin = 0, end = s.size();
    if (left_) {
      while (begin < end && IsWhitespace(DecodeAt(s, begin))) {
        begin += Utf8Len(static_cast<unsigned char>(s[begin]));
      }
    }
    if (right_) {
      while (end > begin) {
        size_t k = end - 1;
        while (k > begin && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        if (!IsWhitespace(DecodeAt(s, k))) break;
        end = k;
      }
    }
    if (begin > 0) t->first_kept = false;
    t->text = s.substr(begin, end - begin);
    return OkStatus();
  }

 private:
  bool left_, right_;
};

class StripAccentsNormalizer final : public Normalizer {
 public:
  Status Normalize(NormText* t, EncodeScratch*) const override {
    MapChars(t, [](char32_t c, std::string* out) {
      if (!IsMark(c)) AppendUtf8(out, c);
    });
    return OkStatus();
  }
};

struct BertOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;
  bool lowercase = true;
};

class BertNormalizer final : public Normalizer {
 public:
  explicit BertNormalizer(BertOptions o) : o_(o) {}
  Status Normalize(NormText* t, EncodeScratch*) const override {
    if (o_.clean_text) {
      MapChars(t, [](char32_t c, std::string* out) {
        const bool ws_control = c == '\t' || c == '\n' || c == '\r';
        if (c == 0 || c == 0xFFFD || (!ws_control && IsOther(c))) return;
        AppendUtf8(out, ws_control || IsWhitespace(c) ? U' ' : c);
      });
    }
    if (o_.handle_chinese_chars) {
      MapChars(t, [](char32_t c, std::string* out) {
        if (IsChineseChar(c)) {
          out->push_back(' ');
          AppendUtf8(out, c);
          out->push_back(' ');
        } else {
          AppendUtf8(out, c);
        }
      });
    }
    if (o_.strip_accents) {
      t->text = internal::Normalize(t->text, NormalForm::kNfd);
      MapChars(t, [](char32_t c, std::string* out) {
        if (!IsMarkNonspacing(c)) AppendUtf8(out, c);
      });
    }
    if (o_.lowercase) {
      MapChars(t, [](char32_t c, std::string* out) { AppendLowercase(out, c); });
    }
    return OkStatus();
  }

 private:
  BertOptions o_;
};

// SentencePiece's NMT normalization: drop control chars, turn odd spaces into ' '.
class NmtNormalizer final : public Normalizer {
 public:
  Status Normalize(NormText* t, EncodeScratch*) const override {
    MapChars(t, [](char32_t c, std::string* out) {
      if ((c >= 0x1 && c <= 0x8) || c == 0xB || (c >= 0xE && c <= 0x1F) || c == 0x7F || c == 0x8F ||
          c == 0x9F) {
        return;
      }
      const bool space = c == 0x9 || c == 0xA || c == 0xC || c == 0xD || c == 0x1680 ||
                         (c >= 0x200B && c <= 0x200F) || c == 0x2028 || c == 0x2029 ||
                         c == 0x2581 || c == 0xFEFF || c == 0xFFFD;
      AppendUtf8(out, space ? U' ' : c);
    });
    return OkStatus();
  }
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  Status Normalize(NormText* t, EncodeScratch* scratch) const override {
    TSR_RETURN_IF_ERROR(pattern_.FindMatches(t->text, &scratch->regex, &scratch->spans));
    std::string out;
    out.reserve(t->text.size());
    for (const Span& s : scratch->spans) {
      if (!s.match) {
        out.append(t->text, s.start, s.end - s.start);
      } else {
        if (s.start == 0 && s.end > 0 && content_.empty()) t->first_kept = false;
        out.append(content_);
      }
    }
    t->text = std::move(out);
    return OkStatus();
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  Status Normalize(NormText* t, EncodeScratch*) const override {
    if (!t->text.empty()) t->text.insert(0, prefix_);
    return OkStatus();
  }

 private:
  std::string prefix_;
};

class ByteLevelNormalizer final : public Normalizer {
 public:
  Status Normalize(NormText* t, EncodeScratch*) const override {
    std::string out;
    out.reserve(t->text.size() * 2);
    for (char c : t->text) out.append(ByteToCharUtf8(static_cast<uint8_t>(c)));
    t->text = std::move(out);
    return OkStatus();
  }
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  Status Normalize(NormText* t, EncodeScratch* scratch) const override {
    for (const auto& p : parts_) TSR_RETURN_IF_ERROR(p->Normalize(t, scratch));
    return OkStatus();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

StatusOr<std::unique_ptr<Normalizer>> BertFromJson(const nlohmann::json& j) {
  BertOptions o;
  TSR_ASSIGN_OR_RETURN(o.clean_text, JsonBool(j, "clean_text", true));
  TSR_ASSIGN_OR_RETURN(o.handle_chinese_chars, JsonBool(j, "handle_chinese_chars", true));
  TSR_ASSIGN_OR_RETURN(o.lowercase, JsonBool(j, "lowercase", true));
  // strip_accents: null means "follow lowercase".
  TSR_ASSIGN_OR_RETURN(o.strip_accents, JsonBool(j, "strip_accents", o.lowercase));
  return std::unique_ptr<Normalizer>(new BertNormalizer(o));
}

}  // namespace

StatusOr<std::unique_ptr<Normalizer>> NormalizerFromJson(const nlohmann::json& j) {
  if (j.is_null()) return std::unique_ptr<Normalizer>();
  if (!j.is_object()) return InvalidArgument("normalizer must be an object");
  const std::string type = JsonType(j);
  std::unique_ptr<Normalizer> n;
  if (type == "NFC")
    n.reset(new UnicodeNormalizer(NormalForm::kNfc));
  else if (type == "NFD")
    n.reset(new UnicodeNormalizer(NormalForm::kNfd));
  else if (type == "NFKC")
    n.reset(new UnicodeNormalizer(NormalForm::kNfkc));
  else if (type == "NFKD")
    n.reset(new UnicodeNormalizer(NormalForm::kNfkd));
  else if (type == "Lowercase")
    n.reset(new LowercaseNormalizer());
  else if (type == "StripAccents")
    n.reset(new StripAccentsNormalizer());
  else if (type == "Nmt")
    n.reset(new NmtNormalizer());
  else if (type == "ByteLevel")
    n.reset(new ByteLevelNormalizer());
  else if (type == "BertNormalizer")
    return BertFromJson(j);
  else if (type == "Strip") {
    TSR_ASSIGN_OR_RETURN(bool left, JsonBool(j, "strip_left", true));
    TSR_ASSIGN_OR_RETURN(bool right, JsonBool(j, "strip_right", true));
    n.reset(new StripNormalizer(left, right));
  } else if (type == "Replace") {
    if (!j.contains("pattern")) return InvalidArgument("Replace normalizer without a pattern");
    TSR_ASSIGN_OR_RETURN(Pattern p, Pattern::FromJson(j["pattern"]));
    TSR_ASSIGN_OR_RETURN(std::string content, JsonString(j, "content"));
    n.reset(new ReplaceNormalizer(std::move(p), std::move(content)));
  } else if (type == "Prepend") {
    TSR_ASSIGN_OR_RETURN(std::string prefix, JsonString(j, "prepend"));
    n.reset(new PrependNormalizer(std::move(prefix)));
  } else if (type == "Sequence") {
    auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) return InvalidArgument("Sequence without normalizers");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& sub : *it) {
      TSR_ASSIGN_OR_RETURN(auto part, NormalizerFromJson(sub));
      if (part) parts.push_back(std::move(part));
    }
    n.reset(new SequenceNormalizer(std::move(parts)));
  } else if (type == "Precompiled") {
    return PrecompiledFromJson(j);
  } else {
    return Unimplemented("normalizer type '" + type + "' is not supported");
  }
  return n;
}

}  // namespace tessera::text::internal
