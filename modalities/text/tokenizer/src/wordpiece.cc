// WordPiece and WordLevel models: tokenizers/src/models/{wordpiece,wordlevel} semantics.
#include <nlohmann/json.hpp>

#include "components.h"
#include "unicode.h"

namespace tessera::text::internal {
namespace {

class WordPieceModel final : public Model {
 public:
  WordPieceModel(Vocab vocab, std::string unk, std::string prefix, size_t max_chars)
      : vocab_(std::move(vocab)),
        unk_(std::move(unk)),
        prefix_(std::move(prefix)),
        max_chars_(max_chars) {
    rev_.Build(vocab_);
  }

  Status Tokenize(std::string_view word, EncodeScratch*, std::vector<int32_t>* ids) const override {
    size_t chars = 0;
    for (unsigned char c : word) chars += (c & 0xC0) != 0x80;
    if (chars > max_chars_) return PushUnk(ids);
    const size_t mark = ids->size();
    std::string buf;
    for (size_t start = 0; start < word.size();) {
      // Greedy longest match: shrink the end one char at a time.
      size_t end = word.size();
      int32_t found = -1;
      while (start < end) {
        std::string_view sub = word.substr(start, end - start);
        if (start > 0) {
          buf.assign(prefix_).append(sub);
          sub = buf;
        }
        if (auto it = vocab_.find(sub); it != vocab_.end()) {
          found = it->second;
          break;
        }
        do {
          --end;
        } while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
      }
      if (found < 0) {
        ids->resize(mark);
        return PushUnk(ids);
      }
      ids->push_back(found);
      start = end;
    }
    return OkStatus();
  }

  std::optional<int32_t> TokenToId(std::string_view token) const override {
    auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* IdToToken(int32_t id) const override { return rev_.Get(id); }
  int32_t IdLimit() const override { return rev_.size(); }

 private:
  Status PushUnk(std::vector<int32_t>* ids) const {
    auto it = vocab_.find(unk_);
    if (it == vocab_.end()) {
      return InvalidArgument("WordPiece unk_token '" + unk_ + "' is not in the vocabulary");
    }
    ids->push_back(it->second);
    return OkStatus();
  }

  Vocab vocab_;
  ReverseVocab rev_;
  std::string unk_;
  std::string prefix_;
  size_t max_chars_;
};

class WordLevelModel final : public Model {
 public:
  WordLevelModel(Vocab vocab, std::string unk) : vocab_(std::move(vocab)), unk_(std::move(unk)) {
    rev_.Build(vocab_);
  }
  Status Tokenize(std::string_view word, EncodeScratch*, std::vector<int32_t>* ids) const override {
    auto it = vocab_.find(word);
    if (it == vocab_.end()) it = vocab_.find(unk_);
    if (it == vocab_.end()) {
      return InvalidArgument("WordLevel unk_token '" + unk_ + "' is not in the vocabulary");
    }
    ids->push_back(it->second);
    return OkStatus();
  }
  std::optional<int32_t> TokenToId(std::string_view token) const override {
    auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* IdToToken(int32_t id) const override { return rev_.Get(id); }
  int32_t IdLimit() const override { return rev_.size(); }

 private:
  Vocab vocab_;
  ReverseVocab rev_;
  std::string unk_;
};

}  // namespace

Status VocabFromJson(const nlohmann::json& j, Vocab* vocab) {
  if (!j.is_object()) return InvalidArgument("vocab must be an object of token -> id");
  vocab->reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_integer()) {
      return InvalidArgument("vocab id of '" + it.key() + "' is not an integer");
    }
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > INT32_MAX) return InvalidArgument("vocab id out of range");
    (*vocab)[it.key()] = static_cast<int32_t>(id);
  }
  return OkStatus();
}

StatusOr<std::unique_ptr<Model>> WordPieceFromJson(const nlohmann::json& j) {
  Vocab vocab;
  if (!j.contains("vocab")) return InvalidArgument("WordPiece model without a vocab");
  TSR_RETURN_IF_ERROR(VocabFromJson(j["vocab"], &vocab));
  std::string unk = "[UNK]", prefix = "##";
  if (j.contains("unk_token") && j["unk_token"].is_string()) unk = j["unk_token"];
  if (j.contains("continuing_subword_prefix") && j["continuing_subword_prefix"].is_string()) {
    prefix = j["continuing_subword_prefix"];
  }
  TSR_ASSIGN_OR_RETURN(int64_t max_chars, JsonInt(j, "max_input_chars_per_word", 100));
  return std::unique_ptr<Model>(
      new WordPieceModel(std::move(vocab), std::move(unk), std::move(prefix),
                         static_cast<size_t>(std::max<int64_t>(0, max_chars))));
}

StatusOr<std::unique_ptr<Model>> WordLevelFromJson(const nlohmann::json& j) {
  Vocab vocab;
  if (!j.contains("vocab")) return InvalidArgument("WordLevel model without a vocab");
  TSR_RETURN_IF_ERROR(VocabFromJson(j["vocab"], &vocab));
  std::string unk = "<unk>";
  if (j.contains("unk_token") && j["unk_token"].is_string()) unk = j["unk_token"];
  return std::unique_ptr<Model>(new WordLevelModel(std::move(vocab), std::move(unk)));
}

}  // namespace tessera::text::internal
