// The tokenizer pipeline's component interfaces and their JSON factories.
//
// Every component is immutable after construction and safe to share between threads; per-call
// state (regex match data, the BPE word cache) lives in an EncodeScratch owned by the caller.
#ifndef TESSERA_TEXT_TOKENIZER_COMPONENTS_H_
#define TESSERA_TEXT_TOKENIZER_COMPONENTS_H_

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pattern.h"
#include "tessera/core/status.h"

namespace tessera::text::internal {

// Transparent hashing so maps keyed by std::string can be probed with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// State for one Encode call. Owned by that call, so encoding stays a pure function of its input.
struct EncodeScratch {
  RegexScratch regex;
  // BPE: word -> ids, so repeated words in a long text are merged once.
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> word_cache;
  std::vector<Span> spans;  // for normalizers (never held across a callback)
};

// ---- Normalizers ----

// Text being normalized. `first_kept` follows whether text[0] still descends from the first
// character of the original segment (what tokenizers' offsets_original().0 == 0 tests for
// Metaspace's prepend_scheme "first"); normalizers that drop a leading char clear it.
struct NormText {
  std::string text;
  bool first_kept = true;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual Status Normalize(NormText* t, EncodeScratch* scratch) const = 0;
};
// Returns nullptr for a JSON null.
StatusOr<std::unique_ptr<Normalizer>> NormalizerFromJson(const nlohmann::json& j);
// SentencePiece's precompiled_charsmap (precompiled.cc); nullptr for an empty map.
StatusOr<std::unique_ptr<Normalizer>> PrecompiledFromJson(const nlohmann::json& j);

// ---- Pre-tokenizers ----

// One pre-token. `first` is true when it starts at offset 0 of the original input.
struct Piece {
  std::string text;
  bool first = false;
};

// Receives each pre-token in order; returning an error stops the pre-tokenizer.
using PieceSink = FunctionRef<Status(Piece&&)>;

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits `piece` and streams the non-empty results to `sink` (nothing is materialized, so a
  // multi-megabyte input costs no whole-text piece vectors). tokenizers applies each
  // pre-tokenizer of a Sequence to all splits before the next; since every split is handled
  // independently, chaining per piece gives the same result.
  virtual Status PreTokenize(Piece&& piece, EncodeScratch* scratch, PieceSink sink) const = 0;
};
StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(const nlohmann::json& j);
// Runs `pre` over every piece of *pieces, replacing the list (for tests and tools).
Status PreTokenizeAll(const PreTokenizer& pre, std::vector<Piece>* pieces, EncodeScratch* scratch);

// ---- Models ----

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of one pre-token.
  virtual Status Tokenize(std::string_view word, EncodeScratch* scratch,
                          std::vector<int32_t>* ids) const = 0;
  virtual std::optional<int32_t> TokenToId(std::string_view token) const = 0;
  // nullptr when `id` is not in the vocabulary.
  virtual const std::string* IdToToken(int32_t id) const = 0;
  // Largest id + 1.
  virtual int32_t IdLimit() const = 0;
};
StatusOr<std::unique_ptr<Model>> ModelFromJson(const nlohmann::json& j);
StatusOr<std::unique_ptr<Model>> BpeFromJson(const nlohmann::json& j);
StatusOr<std::unique_ptr<Model>> WordPieceFromJson(const nlohmann::json& j);
StatusOr<std::unique_ptr<Model>> WordLevelFromJson(const nlohmann::json& j);
StatusOr<std::unique_ptr<Model>> UnigramFromJson(const nlohmann::json& j);
// Reads {"token": id, ...} into *vocab.
Status VocabFromJson(const nlohmann::json& j, Vocab* vocab);

// id -> token table shared by the models: dense where the ids are (nearly) dense, as in every
// published tokenizer.json; a map where they are sparse (ids up to INT32_MAX are valid JSON, and
// tokenizers keeps a hash map too), so a few huge ids cannot make it allocate gigabytes.
class ReverseVocab {
 public:
  void Build(const Vocab& vocab);
  const std::string* Get(int32_t id) const {
    if (id < 0 || id >= limit_) return nullptr;
    if (!sparse_.empty()) {
      auto it = sparse_.find(id);
      return it == sparse_.end() ? nullptr : &it->second;
    }
    return present_[id] ? &tokens_[id] : nullptr;
  }
  // One past the largest id.
  int32_t size() const { return limit_; }

 private:
  int32_t limit_ = 0;
  std::vector<std::string> tokens_;
  std::vector<bool> present_;
  std::unordered_map<int32_t, std::string> sparse_;
};

// ---- Post-processors ----

// One sequence being post-processed: ids and the type (segment) id of each.
struct IdSequence {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // tokenizers' process_encodings: rewrites the one or two sequences (type ids preset to 0 for
  // the first and 1 for the second), adding special tokens when `add_special_tokens`; the
  // caller concatenates what is left. InvalidArgument for a pair a template cannot join.
  virtual Status Process(std::vector<IdSequence>* seqs, bool add_special_tokens) const = 0;
  // tokenizers' added_tokens(is_pair): how many special tokens Process adds.
  virtual int32_t AddedTokens(bool is_pair) const = 0;
};
StatusOr<std::unique_ptr<PostProcessor>> PostProcessorFromJson(const nlohmann::json& j);

// ---- Decoders ----

class Decoder {
 public:
  virtual ~Decoder() = default;
  // tokenizers' decode_chain: rewrites the token strings; the caller concatenates them.
  virtual Status DecodeChain(std::vector<std::string>* tokens) const = 0;
};
StatusOr<std::unique_ptr<Decoder>> DecoderFromJson(const nlohmann::json& j);

// ---- JSON helpers (no exceptions escape: each returns a Status on a type mismatch) ----

StatusOr<std::string> JsonString(const nlohmann::json& j, std::string_view key);
// Missing or null -> `fallback`.
StatusOr<bool> JsonBool(const nlohmann::json& j, std::string_view key, bool fallback);
StatusOr<int64_t> JsonInt(const nlohmann::json& j, std::string_view key, int64_t fallback);
// The single char of j[key] (replacement / content fields).
StatusOr<char32_t> JsonChar(const nlohmann::json& j, std::string_view key);
std::string JsonType(const nlohmann::json& j);  // j["type"] or ""

}  // namespace tessera::text::internal

#endif  // TESSERA_TEXT_TOKENIZER_COMPONENTS_H_
