#include "added_vocabulary.h"

#include "unicode.h"

namespace tessera::text::internal {
namespace {

// The char ending just before byte `end` (REQUIRES: end > 0, a boundary of valid UTF-8).
char32_t CharBefore(std::string_view s, size_t end) {
  size_t k = end - 1;
  while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
  return DecodeAt(s, k);
}

}  // namespace

Status AddedVocabulary::Init(const std::vector<AddedToken>& tokens, const Normalizer* normalizer) {
  EncodeScratch scratch;
  for (const AddedToken& t : tokens) {
    if (t.content.empty()) continue;
    const size_t index = tokens_.size();
    tokens_.push_back(t);
    by_id_[t.id] = index;
    by_content_[t.content] = t.id;
    if (t.special) special_.insert(t.content);
    id_limit_ = std::max(id_limit_, t.id + 1);
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    AddedToken& t = tokens_[i];
    t.decode_form = t.content;
    if (!t.normalized) {
      raw_trie_.Insert(t.content, static_cast<int32_t>(i));
      has_raw_ = true;
      continue;
    }
    // A normalized token is looked for in normalized text, so normalize its spelling too.
    NormText nt{t.content, true};
    if (normalizer != nullptr) TSR_RETURN_IF_ERROR(normalizer->Normalize(&nt, &scratch));
    if (nt.text.empty()) continue;
    t.decode_form = nt.text;
    norm_trie_.Insert(nt.text, static_cast<int32_t>(i));
    has_norm_ = true;
  }
  raw_trie_.Build();
  norm_trie_.Build();
  return OkStatus();
}

void AddedVocabulary::FindMatches(std::string_view s, bool normalized_set,
                                  std::vector<Split>* out) const {
  out->clear();
  const ByteTrie& trie = normalized_set ? norm_trie_ : raw_trie_;
  if ((normalized_set ? !has_norm_ : !has_raw_) || s.empty()) {
    if (!s.empty()) out->push_back({0, s.size(), -1});
    return;
  }
  size_t start_offset = 0;  // end of the last accepted match
  for (size_t pos = 0; pos < s.size();) {
    int32_t index = -1;
    const size_t len = trie.CanStartWith(static_cast<unsigned char>(s[pos]))
                           ? trie.LongestPrefix(s.substr(pos), &index)
                           : 0;
    if (len == 0) {
      ++pos;
      continue;
    }
    // The automaton resumes after the raw match whether or not the match is kept.
    size_t start = pos, stop = pos + len;
    pos = stop;
    const AddedToken& tok = tokens_[by_id_.at(tokens_[index].id)];
    if (tok.single_word) {
      const bool word_before = start > 0 && IsWordChar(CharBefore(s, start));
      const bool word_after = stop < s.size() && IsWordChar(DecodeAt(s, stop));
      if (word_before || word_after) continue;
    }
    if (tok.lstrip) {
      size_t k = start;
      while (k > 0 && IsWhitespace(CharBefore(s, k))) {
        --k;
        while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
      }
      start = std::max(k, start_offset);
    }
    if (tok.rstrip) {
      while (stop < s.size() && IsWhitespace(DecodeAt(s, stop))) {
        stop += Utf8Len(static_cast<unsigned char>(s[stop]));
      }
    }
    if (start_offset < start) out->push_back({start_offset, start, -1});
    out->push_back({start, stop, tok.id});
    start_offset = stop;
  }
  if (start_offset < s.size()) out->push_back({start_offset, s.size(), -1});
}

const AddedToken* AddedVocabulary::ById(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::IdOf(std::string_view content) const {
  auto it = by_content_.find(content);
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

bool AddedVocabulary::IsSpecialContent(std::string_view content) const {
  return special_.find(content) != special_.end();
}

}  // namespace tessera::text::internal
