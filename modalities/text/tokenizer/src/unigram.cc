// Unigram model: tokenizers/src/models/unigram/model.rs (encode_optimized) semantics.
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "components.h"
#include "trie.h"
#include "unicode.h"

namespace tessera::text::internal {
namespace {

// Score handicap of an unknown char relative to the worst vocab piece (Rust K_UNK_PENALTY).
constexpr double kUnkPenalty = 10.0;

class UnigramModel final : public Model {
 public:
  UnigramModel(std::vector<std::pair<std::string, double>> pieces, std::optional<int32_t> unk_id,
               bool byte_fallback)
      : pieces_(std::move(pieces)), unk_id_(unk_id), byte_fallback_(byte_fallback) {
    double min_score = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < pieces_.size(); ++i) {
      vocab_[pieces_[i].first] = static_cast<int32_t>(i);  // a repeated piece keeps its last id
      min_score = std::min(min_score, pieces_[i].second);
    }
    for (const auto& [piece, id] : vocab_) {
      if (!piece.empty()) trie_.Insert(piece, id);
    }
    trie_.Build();
    rev_.Build(vocab_);
    unk_score_ = min_score - kUnkPenalty;
  }

  Status Tokenize(std::string_view word, EncodeScratch*, std::vector<int32_t>* ids) const override;

  std::optional<int32_t> TokenToId(std::string_view token) const override {
    auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* IdToToken(int32_t id) const override { return rev_.Get(id); }
  int32_t IdLimit() const override { return rev_.size(); }

 private:
  struct Segment {
    size_t start, end;
  };
  Status BestPath(std::string_view s, std::vector<Segment>* segments) const;
  Status EmitSegment(std::string_view piece, std::vector<int32_t>* ids) const;

  std::vector<std::pair<std::string, double>> pieces_;
  Vocab vocab_;
  ReverseVocab rev_;
  ByteTrie trie_;
  std::optional<int32_t> unk_id_;
  bool byte_fallback_;
  double unk_score_ = 0;
};

// Viterbi over the lattice of vocab pieces; consecutive unknown chars are fused into one segment.
Status UnigramModel::BestPath(std::string_view s, std::vector<Segment>* segments) const {
  struct Node {
    int32_t id = -1;
    double score = 0;
    int64_t starts_at = -1;  // -1: not reached yet
  };
  std::vector<Node> best(s.size() + 1);
  for (size_t start = 0; start < s.size();) {
    const double base = best[start].score;
    const size_t char_len = Utf8Len(static_cast<unsigned char>(s[start]));
    bool has_single = false;
    trie_.PrefixSearch(s.substr(start), [&](size_t len, int32_t id) {
      Node& target = best[start + len];
      const double cand = base + pieces_[id].second;
      if (target.starts_at < 0 || cand > target.score) {
        target = {id, cand, static_cast<int64_t>(start)};
      }
      has_single |= len == char_len;
    });
    if (!has_single) {
      if (!unk_id_) return InvalidArgument("Unigram model met an unknown char but has no unk_id");
      Node& target = best[start + char_len];
      const double cand = base + unk_score_;
      if (target.starts_at < 0 || cand > target.score) {
        target = {*unk_id_, cand, static_cast<int64_t>(start)};
      }
    }
    start += char_len;
  }
  // Walk back from the end; runs of unk nodes fuse (Unigram always fuses unknowns).
  std::vector<Segment> rev;
  bool prev_unk = false;
  for (size_t end = s.size(); end > 0;) {
    const Node& n = best[end];
    if (n.starts_at < 0) return Internal("Unigram lattice has no path");
    const auto start = static_cast<size_t>(n.starts_at);
    const bool unk = unk_id_ && n.id == *unk_id_;
    if (unk && prev_unk) {
      rev.back().start = start;
    } else {
      rev.push_back({start, end});
    }
    prev_unk = unk;
    end = start;
  }
  segments->assign(rev.rbegin(), rev.rend());
  return OkStatus();
}

Status UnigramModel::EmitSegment(std::string_view piece, std::vector<int32_t>* ids) const {
  if (auto it = vocab_.find(piece); it != vocab_.end()) {
    ids->push_back(it->second);
    return OkStatus();
  }
  if (byte_fallback_) {
    std::vector<int32_t> bytes;
    for (unsigned char c : piece) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", c);
      auto it = vocab_.find(std::string_view(name));
      if (it == vocab_.end()) break;
      bytes.push_back(it->second);
    }
    if (bytes.size() == piece.size()) {
      ids->insert(ids->end(), bytes.begin(), bytes.end());
      return OkStatus();
    }
  }
  if (!unk_id_) return InvalidArgument("Unigram model met an unknown piece but has no unk_id");
  ids->push_back(*unk_id_);
  return OkStatus();
}

Status UnigramModel::Tokenize(std::string_view word, EncodeScratch*,
                              std::vector<int32_t>* ids) const {
  if (word.empty()) return OkStatus();
  std::vector<Segment> segments;
  TSR_RETURN_IF_ERROR(BestPath(word, &segments));
  for (const Segment& seg : segments) {
    TSR_RETURN_IF_ERROR(EmitSegment(word.substr(seg.start, seg.end - seg.start), ids));
  }
  return OkStatus();
}

}  // namespace

StatusOr<std::unique_ptr<Model>> UnigramFromJson(const nlohmann::json& j) {
  auto it = j.find("vocab");
  if (it == j.end() || !it->is_array()) return InvalidArgument("Unigram vocab must be an array");
  std::vector<std::pair<std::string, double>> pieces;
  pieces.reserve(it->size());
  for (const auto& e : *it) {
    if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number()) {
      return InvalidArgument("Unigram vocab entries must be [piece, score]");
    }
    pieces.emplace_back(e[0].get<std::string>(), e[1].get<double>());
  }
  std::optional<int32_t> unk_id;
  if (j.contains("unk_id") && j["unk_id"].is_number_integer()) {
    const int64_t id = j["unk_id"].get<int64_t>();
    if (id < 0 || static_cast<size_t>(id) >= pieces.size()) {
      return InvalidArgument("Unigram unk_id is out of range");
    }
    unk_id = static_cast<int32_t>(id);
  }
  TSR_ASSIGN_OR_RETURN(bool byte_fallback, JsonBool(j, "byte_fallback", false));
  return std::unique_ptr<Model>(new UnigramModel(std::move(pieces), unk_id, byte_fallback));
}

StatusOr<std::unique_ptr<Model>> ModelFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return InvalidArgument("model must be an object");
  std::string type = JsonType(j);
  if (type.empty()) {  // old files leave the type out; the fields tell which model it is
    const bool array_vocab = j.contains("vocab") && j["vocab"].is_array();
    type = array_vocab                              ? "Unigram"
           : j.contains("merges")                   ? "BPE"
           : j.contains("max_input_chars_per_word") ? "WordPiece"
                                                    : "WordLevel";
  }
  if (type == "BPE") return BpeFromJson(j);
  if (type == "WordPiece") return WordPieceFromJson(j);
  if (type == "WordLevel") return WordLevelFromJson(j);
  if (type == "Unigram") return UnigramFromJson(j);
  return Unimplemented("model type '" + type + "' is not supported");
}

}  // namespace tessera::text::internal
