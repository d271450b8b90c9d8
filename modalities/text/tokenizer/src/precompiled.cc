// The Precompiled normalizer: SentencePiece's compiled normalization rules
// (`precompiled_charsmap`, e.g. nmt_nfkc in XLM-RoBERTa / bge-m3 / T5 tokenizers), applied with
// the semantics of tokenizers' normalizers::Precompiled.
//
// Blob layout (base64 in tokenizer.json): u32 little-endian byte size N of the trie, then N
// bytes of darts-clone double-array units (u32 LE each), then the pool of replacement strings,
// each NUL-terminated; a trie value is a byte offset into the pool.
//
// Matching, as tokenizers does it (not as sentencepiece's own longest-match normalizer): the
// text is cut into extended grapheme clusters; a cluster shorter than 6 bytes is first looked up
// whole, and otherwise (or when that finds nothing) each of its chars is looked up alone. A
// lookup takes the value of the SHORTEST rule that is a prefix of the key, so a cluster whose
// first char has a rule is replaced whole by that char's replacement.
#include <utf8proc.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "components.h"
#include "unicode.h"

namespace tessera::text::internal {
namespace {

// darts-clone unit fields.
bool HasLeaf(uint32_t unit) {
  return ((unit >> 8) & 1) != 0;
}
uint32_t Value(uint32_t unit) {
  return unit & ((1u << 31) - 1);
}
uint32_t Label(uint32_t unit) {
  return unit & ((1u << 31) | 0xFF);
}
size_t Offset(uint32_t unit) {
  return (unit >> 10) << ((unit & (1u << 9)) >> 6);
}

StatusOr<std::string> Base64Decode(std::string_view in) {
  auto sextet = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < in.size() && in[i] != '='; ++i) {
    const int v = sextet(in[i]);
    if (v < 0) return InvalidArgument("precompiled_charsmap is not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  for (; i < in.size(); ++i)
    if (in[i] != '=') return InvalidArgument("precompiled_charsmap: data after base64 padding");
  return out;
}

class PrecompiledNormalizer final : public Normalizer {
 public:
  PrecompiledNormalizer(std::vector<uint32_t> units, std::string pool)
      : units_(std::move(units)), pool_(std::move(pool)) {}

  Status Normalize(NormText* t, EncodeScratch*) const override {
    const std::string& s = t->text;
    std::string out;
    out.reserve(s.size());
    size_t start = 0;  // of the current grapheme cluster
    utf8proc_int32_t state = 0;
    char32_t prev = 0;
    for (size_t i = 0; i <= s.size();) {
      const char32_t c = i < s.size() ? DecodeAt(s, i) : 0;
      const bool boundary =
          i == s.size() ||
          (i > start && utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev),
                                                         static_cast<utf8proc_int32_t>(c), &state));
      if (boundary && i > start) {
        const size_t before = out.size();
        AppendCluster(std::string_view(s).substr(start, i - start), &out);
        if (start == 0 && out.size() == before) t->first_kept = false;
        start = i;
      }
      if (i == s.size()) break;
      prev = c;
      i += Utf8Len(static_cast<unsigned char>(s[i]));
    }
    t->text = std::move(out);
    return OkStatus();
  }

 private:
  void AppendCluster(std::string_view cluster, std::string* out) const {
    if (cluster.size() < 6) {
      if (auto r = Transform(cluster)) {
        out->append(*r);
        return;
      }
    }
    for (size_t i = 0; i < cluster.size();) {
      const size_t n = Utf8Len(static_cast<unsigned char>(cluster[i]));
      const std::string_view ch = cluster.substr(i, n);
      if (auto r = Transform(ch))
        out->append(*r);
      else
        out->append(ch);
      i += n;
    }
  }

  // The replacement of the shortest rule that is a prefix of `key`; nullopt when none is.
  // Malformed tries end the walk instead of reading out of bounds.
  std::optional<std::string_view> Transform(std::string_view key) const {
    size_t pos = Offset(units_[0]);
    for (unsigned char c : key) {
      if (c == 0) return std::nullopt;
      pos ^= c;
      if (pos >= units_.size()) return std::nullopt;
      const uint32_t unit = units_[pos];
      if (Label(unit) != c) return std::nullopt;
      pos ^= Offset(unit);
      if (HasLeaf(unit)) {
        if (pos >= units_.size()) return std::nullopt;
        const size_t at = Value(units_[pos]);
        if (at > pool_.size()) return std::nullopt;
        const size_t end = pool_.find('\0', at);
        return std::string_view(pool_).substr(at,
                                              (end == std::string::npos ? pool_.size() : end) - at);
      }
    }
    return std::nullopt;
  }

  std::vector<uint32_t> units_;  // the double array
  std::string pool_;             // NUL-terminated replacements
};

}  // namespace

StatusOr<std::unique_ptr<Normalizer>> PrecompiledFromJson(const nlohmann::json& j) {
  auto it = j.find("precompiled_charsmap");
  // An empty map (what converters write when the model had no rules) is the identity.
  if (it == j.end() || it->is_null()) return std::unique_ptr<Normalizer>();
  if (!it->is_string()) return InvalidArgument("precompiled_charsmap must be a base64 string");
  const std::string& b64 = it->get_ref<const std::string&>();
  if (b64.empty()) return std::unique_ptr<Normalizer>();
  TSR_ASSIGN_OR_RETURN(std::string blob, Base64Decode(b64));
  if (blob.size() < 4) return InvalidArgument("precompiled_charsmap is shorter than its header");
  const uint32_t trie_bytes = static_cast<uint32_t>(static_cast<uint8_t>(blob[0])) |
                              static_cast<uint32_t>(static_cast<uint8_t>(blob[1])) << 8 |
                              static_cast<uint32_t>(static_cast<uint8_t>(blob[2])) << 16 |
                              static_cast<uint32_t>(static_cast<uint8_t>(blob[3])) << 24;
  if (trie_bytes == 0 || trie_bytes % 4 != 0 || trie_bytes > blob.size() - 4)
    return InvalidArgument("precompiled_charsmap: bad trie size " + std::to_string(trie_bytes));
  std::vector<uint32_t> units(trie_bytes / 4);
  for (size_t u = 0; u < units.size(); ++u) {
    const auto* p = reinterpret_cast<const uint8_t*>(blob.data()) + 4 + 4 * u;
    units[u] = static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
               static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
  }
  std::string pool = blob.substr(4 + trie_bytes);
  if (!IsValidUtf8(pool)) return InvalidArgument("precompiled_charsmap: pool is not UTF-8");
  return std::unique_ptr<Normalizer>(new PrecompiledNormalizer(std::move(units), std::move(pool)));
}

}  // namespace tessera::text::internal
