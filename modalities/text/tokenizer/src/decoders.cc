// Decoders: tokenizers/src/decoders/* decode_chain semantics.
#include <nlohmann/json.hpp>

#include "components.h"
#include "unicode.h"

namespace tessera::text::internal {
namespace {

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, pos)) {
    out.append(*s, pos, at - pos).append(to);
    pos = at + from.size();
  }
  if (pos == 0) return;
  out.append(*s, pos, std::string::npos);
  *s = std::move(out);
}

// Maps byte-level chars back to bytes and joins everything into one lossy-UTF-8 string.
class ByteLevelDecoder final : public Decoder {
 public:
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::string bytes;
    for (const std::string& t : *tokens) {
      const size_t mark = bytes.size();
      bool all_mapped = true;
      for (size_t i = 0; i < t.size() && all_mapped;) {
        const int b = CharToByte(DecodeAt(t, i));
        if (b < 0) {
          all_mapped = false;
        } else {
          bytes.push_back(static_cast<char>(b));
        }
        i += Utf8Len(static_cast<unsigned char>(t[i]));
      }
      if (!all_mapped) {  // a token with a foreign char (an added token) passes through as is
        bytes.resize(mark);
        bytes.append(t);
      }
    }
    tokens->assign(1, FromUtf8Lossy(bytes));
    return OkStatus();
  }
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, PrependScheme scheme)
      : replacement_(replacement), scheme_(scheme) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      const std::string& t = (*tokens)[i];
      std::string out;
      out.reserve(t.size());
      for (size_t k = 0; k < t.size();) {
        const size_t n = Utf8Len(static_cast<unsigned char>(t[k]));
        if (DecodeAt(t, k) == replacement_) {
          // The first token loses its (prepended) replacement chars entirely.
          if (i != 0 || scheme_ == PrependScheme::kNever) out.push_back(' ');
        } else {
          out.append(t, k, n);
        }
        k += n;
      }
      (*tokens)[i] = std::move(out);
    }
    return OkStatus();
  }

 private:
  char32_t replacement_;
  PrependScheme scheme_;
};

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup)
      : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string& t = (*tokens)[i];
      if (i != 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else {
          t.insert(0, 1, ' ');
        }
      }
      if (cleanup_) Cleanup(&t);
    }
    return OkStatus();
  }
  // tokenizers' wordpiece::cleanup: re-attach punctuation and English contractions.
  static void Cleanup(std::string* t) {
    static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
        {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
        {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
        {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : kRules) ReplaceAll(t, from, to);
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

// Turns runs of <0xHH> tokens back into text; invalid UTF-8 becomes one U+FFFD per byte.
class ByteFallbackDecoder final : public Decoder {
 public:
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens->size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (IsValidUtf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : *tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') byte = ParseHex(t[3], t[4]);
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    *tokens = std::move(out);
    return OkStatus();
  }

 private:
  static int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int ParseHex(char hi, char lo) {
    const int h = HexDigit(hi), l = HexDigit(lo);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
  }
};

class FuseDecoder final : public Decoder {
 public:
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::string joined;
    for (const std::string& t : *tokens) joined += t;
    tokens->assign(1, std::move(joined));
    return OkStatus();
  }
};

// Removes up to `start` leading and `stop` trailing `content` chars from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) {
      std::vector<size_t> bounds;  // char start offsets
      for (size_t i = 0; i < t.size(); i += Utf8Len(static_cast<unsigned char>(t[i]))) {
        bounds.push_back(i);
      }
      const size_t n = bounds.size();
      size_t cut_start = 0;
      for (size_t i = 0; i < std::min(start_, n) && DecodeAt(t, bounds[i]) == content_; ++i) {
        cut_start = i + 1;
      }
      size_t cut_stop = n;
      for (size_t i = 0; i < stop_ && i < n; ++i) {
        const size_t idx = n - i - 1;
        if (DecodeAt(t, bounds[idx]) != content_) break;
        cut_stop = idx;
      }
      if (cut_stop <= cut_start) {
        t.clear();
        continue;
      }
      const size_t b = cut_start < n ? bounds[cut_start] : t.size();
      const size_t e = cut_stop < n ? bounds[cut_stop] : t.size();
      t = t.substr(b, e - b);
    }
    return OkStatus();
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    RegexScratch regex;
    std::vector<Span> spans;
    for (std::string& t : *tokens) {
      TSR_RETURN_IF_ERROR(pattern_.FindMatches(t, &regex, &spans));
      std::string out;
      for (const Span& s : spans) {
        if (s.match) {
          out.append(content_);
        } else {
          out.append(t, s.start, s.end - s.start);
        }
      }
      t = std::move(out);
    }
    return OkStatus();
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// BPEDecoder: the end-of-word suffix becomes a space, except on the last token.
class BpeDecoder final : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      ReplaceAll(&(*tokens)[i], suffix_, i + 1 == tokens->size() ? "" : " ");
    }
    return OkStatus();
  }

 private:
  std::string suffix_;
};

// CTC: collapse repeats, drop the pad token, word delimiter -> space.
class CtcDecoder final : public Decoder {
 public:
  CtcDecoder(std::string pad, std::string delimiter, bool cleanup)
      : pad_(std::move(pad)), delimiter_(std::move(delimiter)), cleanup_(cleanup) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens->size(); ++i) {
      if (i > 0 && (*tokens)[i] == (*tokens)[i - 1]) continue;
      std::string t = (*tokens)[i];
      ReplaceAll(&t, pad_, "");
      if (cleanup_) {
        WordPieceDecoder::Cleanup(&t);
        ReplaceAll(&t, delimiter_, " ");
      }
      out.push_back(std::move(t));
    }
    *tokens = std::move(out);
    return OkStatus();
  }

 private:
  std::string pad_, delimiter_;
  bool cleanup_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts)
      : parts_(std::move(parts)) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (const auto& d : parts_) TSR_RETURN_IF_ERROR(d->DecodeChain(tokens));
    return OkStatus();
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

StatusOr<PrependScheme> DecoderPrependScheme(const nlohmann::json& j) {
  TSR_ASSIGN_OR_RETURN(bool add_prefix_space, JsonBool(j, "add_prefix_space", true));
  auto it = j.find("prepend_scheme");
  if (it == j.end() || it->is_null()) {
    return add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  const std::string s = it->is_string() ? it->get<std::string>() : "";
  if (s == "always") return PrependScheme::kAlways;
  if (s == "first") return PrependScheme::kFirst;
  if (s == "never") return PrependScheme::kNever;
  return InvalidArgument("unknown prepend_scheme '" + s + "'");
}

StatusOr<std::unique_ptr<Decoder>> StringFieldsDecoder(const std::string& type,
                                                       const nlohmann::json& j) {
  if (type == "WordPiece") {
    std::string prefix = "##";
    if (j.contains("prefix") && j["prefix"].is_string()) prefix = j["prefix"];
    TSR_ASSIGN_OR_RETURN(bool cleanup, JsonBool(j, "cleanup", true));
    return std::unique_ptr<Decoder>(new WordPieceDecoder(std::move(prefix), cleanup));
  }
  if (type == "BPEDecoder") {
    std::string suffix = "</w>";
    if (j.contains("suffix") && j["suffix"].is_string()) suffix = j["suffix"];
    return std::unique_ptr<Decoder>(new BpeDecoder(std::move(suffix)));
  }
  if (type == "CTC") {
    std::string pad = "<pad>", delimiter = "|";
    if (j.contains("pad_token") && j["pad_token"].is_string()) pad = j["pad_token"];
    if (j.contains("word_delimiter_token") && j["word_delimiter_token"].is_string()) {
      delimiter = j["word_delimiter_token"];
    }
    TSR_ASSIGN_OR_RETURN(bool cleanup, JsonBool(j, "cleanup", true));
    return std::unique_ptr<Decoder>(new CtcDecoder(std::move(pad), std::move(delimiter), cleanup));
  }
  if (type == "Replace") {
    if (!j.contains("pattern")) return InvalidArgument("Replace decoder without a pattern");
    TSR_ASSIGN_OR_RETURN(Pattern p, Pattern::FromJson(j["pattern"]));
    TSR_ASSIGN_OR_RETURN(std::string content, JsonString(j, "content"));
    return std::unique_ptr<Decoder>(new ReplaceDecoder(std::move(p), std::move(content)));
  }
  return Unimplemented("decoder type '" + type + "' is not supported");
}

}  // namespace

StatusOr<std::unique_ptr<Decoder>> DecoderFromJson(const nlohmann::json& j) {
  if (j.is_null()) return std::unique_ptr<Decoder>();
  if (!j.is_object()) return InvalidArgument("decoder must be an object");
  const std::string type = JsonType(j);
  if (type == "ByteLevel") return std::unique_ptr<Decoder>(new ByteLevelDecoder());
  if (type == "ByteFallback") return std::unique_ptr<Decoder>(new ByteFallbackDecoder());
  if (type == "Fuse") return std::unique_ptr<Decoder>(new FuseDecoder());
  if (type == "Metaspace") {
    TSR_ASSIGN_OR_RETURN(char32_t rep, JsonChar(j, "replacement"));
    TSR_ASSIGN_OR_RETURN(PrependScheme scheme, DecoderPrependScheme(j));
    return std::unique_ptr<Decoder>(new MetaspaceDecoder(rep, scheme));
  }
  if (type == "Strip") {
    TSR_ASSIGN_OR_RETURN(char32_t content, JsonChar(j, "content"));
    TSR_ASSIGN_OR_RETURN(int64_t start, JsonInt(j, "start", 0));
    TSR_ASSIGN_OR_RETURN(int64_t stop, JsonInt(j, "stop", 0));
    return std::unique_ptr<Decoder>(
        new StripDecoder(content, static_cast<size_t>(std::max<int64_t>(0, start)),
                         static_cast<size_t>(std::max<int64_t>(0, stop))));
  }
  if (type == "Sequence") {
    auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) return InvalidArgument("Sequence without decoders");
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const auto& sub : *it) {
      TSR_ASSIGN_OR_RETURN(auto part, DecoderFromJson(sub));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<Decoder>(new SequenceDecoder(std::move(parts)));
  }
  return StringFieldsDecoder(type, j);
}

}  // namespace tessera::text::internal
