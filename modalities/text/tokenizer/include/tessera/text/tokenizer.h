// Hugging Face `tokenizer.json` tokenizer, matching the Python `tokenizers` library id for id.
//
// Pipeline (as tokenizers' TokenizerImpl::encode): added tokens are cut out of the raw text,
// each remaining segment is normalized, normalized added tokens are cut out, the rest is
// pre-tokenized and run through the model, and the post-processor adds special tokens.
//
// Supported: models BPE / WordPiece / WordLevel / Unigram; normalizers NFC/NFD/NFKC/NFKD,
// Lowercase, Strip, StripAccents, BertNormalizer, Nmt, Replace, Prepend, ByteLevel, Sequence,
// Precompiled (SentencePiece charsmaps); pre-tokenizers Split, ByteLevel, Metaspace, Digits,
// Punctuation, Whitespace, WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit, Sequence;
// post-processors TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, Sequence
// (single sequences and pairs, with type ids); decoders ByteLevel, Metaspace, WordPiece,
// ByteFallback, Fuse, Strip, Replace, BPEDecoder, CTC, Sequence. `truncation` and `padding`
// settings in the file are ignored.
#ifndef TESSERA_TEXT_TOKENIZER_H_
#define TESSERA_TEXT_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/core/status.h"

namespace tessera::text {

// Ids of one sequence or a joined pair and the type (segment) id of each, as tokenizers'
// Encoding.ids / Encoding.type_ids.
struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
};

class Tokenizer {
 public:
  // Loads a tokenizer.json. Errors: NotFound (no file), InvalidArgument (malformed JSON or
  // inconsistent vocab/merges), Unimplemented (a component type this library lacks).
  static StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& tokenizer_json_path);
  static StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view json);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // As tokenizers' `encode(text, add_special_tokens=...).ids`. `text` must be valid UTF-8
  // (InvalidArgument otherwise). Thread-safe; a pure function of its arguments.
  StatusOr<std::vector<int32_t>> Encode(std::string_view text, bool add_special_tokens) const;

  // As tokenizers' `encode(a, pair=b, add_special_tokens=...)`: the post-processor's pair form
  // (BertProcessing, RobertaProcessing, TemplateProcessing "pair") joins the two and sets the
  // type ids. Note: transformers' Python wrapper drops an empty `b` (encodes `a` alone); this
  // follows the tokenizers library. Thread-safe.
  StatusOr<Encoding> EncodePair(std::string_view a, std::string_view b,
                                bool add_special_tokens) const;

  // The post-processing step alone, for callers that tokenize and truncate the pieces
  // themselves: `a` and the optional `b` are ids as Encode(text, false) returns them.
  // InvalidArgument when a pair is given and the template has no pair form. Thread-safe.
  StatusOr<Encoding> PostProcess(std::span<const int32_t> a,
                                 std::optional<std::span<const int32_t>> b,
                                 bool add_special_tokens) const;
  // How many special tokens PostProcess adds (tokenizers' num_special_tokens_to_add).
  int32_t NumSpecialTokensToAdd(bool is_pair) const;

  // As tokenizers' `decode(ids, skip_special_tokens=...)`, except that an id outside the
  // vocabulary is an OutOfRange error (the library silently drops it). Thread-safe.
  StatusOr<std::string> Decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  // Largest id (model vocabulary or added token) + 1.
  int32_t vocab_size() const;
  // Added tokens first, then the model vocabulary (as the library). IdToToken, like the
  // library's id_to_token, spells a `normalized` added token in its normalized form. Thread-safe.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  std::optional<std::string> IdToToken(int32_t id) const;
  // True for ids of added tokens marked "special" (the ones skip_special_tokens drops).
  bool IsSpecial(int32_t id) const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  // Ids of `text` before post-processing.
  StatusOr<std::vector<int32_t>> EncodeRaw(std::string_view text) const;
  std::unique_ptr<Impl> impl_;
};

// Streaming detokenizer (tokenizers' DecodeStream): feed ids one by one, get back only text that
// is complete. Text whose decoding still ends in U+FFFD (a partial multi-byte sequence or an
// unfinished run of byte-fallback tokens) is held back until a later id completes it, so the
// concatenation of all Step() results and the final Flush() equals Decode() of the whole id
// sequence. Keeps a short window of ids, not the whole history.
//
// Not thread-safe: use one stream per sequence. `tokenizer` is not owned and must outlive it.
class DecodeStream {
 public:
  DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Adds one id; returns the newly completed text (possibly empty).
  StatusOr<std::string> Step(int32_t id);
  // Returns whatever is still held back (incomplete bytes decode to U+FFFD) and resets.
  StatusOr<std::string> Flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;  // the window: context ids, then ids not yet fully emitted
  std::string prefix_;        // Decode() of the context ids
  size_t prefix_index_ = 0;   // number of context ids at the front of ids_
};

}  // namespace tessera::text

#endif  // TESSERA_TEXT_TOKENIZER_H_
