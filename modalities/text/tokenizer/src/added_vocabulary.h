// Added tokens: matched in the text before (or, for `normalized` ones, right after)
// normalization, as tokenizers' tokenizer/added_vocabulary.rs does.
#ifndef TESSERA_TEXT_TOKENIZER_ADDED_VOCABULARY_H_
#define TESSERA_TEXT_TOKENIZER_ADDED_VOCABULARY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "components.h"
#include "trie.h"

namespace tessera::text::internal {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
  // What decoding and IdToToken show: the normalized spelling for `normalized` tokens (as
  // tokenizers >= 0.22 does), else `content`. Filled by AddedVocabulary::Init.
  std::string decode_form;
};

// Immutable after Init(); lookups and matching are thread-safe.
class AddedVocabulary {
 public:
  // `normalizer` (may be null) rewrites the contents of `normalized` tokens into the form they
  // take in normalized text. Tokens with empty content are ignored.
  Status Init(const std::vector<AddedToken>& tokens, const Normalizer* normalizer);

  // A piece of the input: [start, end) and the added token's id, or -1 for plain text.
  struct Split {
    size_t start;
    size_t end;
    int32_t id;
  };
  // Covers `s` with plain pieces and the added tokens of one set (raw or normalized), using
  // leftmost-longest matching plus the single_word / lstrip / rstrip rules.
  void FindMatches(std::string_view s, bool normalized_set, std::vector<Split>* out) const;

  const AddedToken* ById(int32_t id) const;
  std::optional<int32_t> IdOf(std::string_view content) const;
  bool IsSpecialContent(std::string_view content) const;
  int32_t IdLimit() const { return id_limit_; }

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;  // id -> index in tokens_ (latest definition)
  Vocab by_content_;
  std::unordered_set<std::string, StringHash, std::equal_to<>> special_;
  ByteTrie raw_trie_;  // values: index into tokens_
  ByteTrie norm_trie_;
  bool has_raw_ = false, has_norm_ = false;
  int32_t id_limit_ = 0;
};

}  // namespace tessera::text::internal

#endif  // TESSERA_TEXT_TOKENIZER_ADDED_VOCABULARY_H_
