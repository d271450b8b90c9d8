// BPE model: tokenizers/src/models/bpe/{model,word}.rs semantics (dropout ignored).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "components.h"
#include "unicode.h"

namespace tessera::text::internal {
namespace {

// Words longer than this are merged but not cached (they rarely repeat).
constexpr size_t kMaxCachedWordBytes = 256;
// The per-call cache is dropped when it grows past this many words, bounding memory.
constexpr size_t kMaxCachedWords = 1 << 18;

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct MergeInfo {
  int32_t rank;
  int32_t new_id;
};

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool removed;
};

// A queued merge of symbols[pos] with its right neighbour.
struct QueuedMerge {
  int32_t pos;
  int32_t rank;
  int32_t new_id;
};
// Heap order: lowest rank first, then leftmost position (as Rust's `Ord for Merge`).
struct MergeLess {
  bool operator()(const QueuedMerge& a, const QueuedMerge& b) const {
    if (a.rank != b.rank) return a.rank > b.rank;
    return a.pos > b.pos;
  }
};

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string prefix;  // continuing_subword_prefix
  std::string suffix;  // end_of_word_suffix
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel final : public Model {
 public:
  BpeModel(Vocab vocab, std::unordered_map<uint64_t, MergeInfo> merges, BpeOptions o)
      : vocab_(std::move(vocab)), merges_(std::move(merges)), o_(std::move(o)) {
    rev_.Build(vocab_);
    byte_ids_.fill(-1);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      if (auto it = vocab_.find(std::string_view(name)); it != vocab_.end()) {
        byte_ids_[b] = it->second;
      }
    }
  }

  Status Tokenize(std::string_view word, EncodeScratch* scratch,
                  std::vector<int32_t>* ids) const override {
    if (word.empty()) return OkStatus();
    if (o_.ignore_merges) {
      if (auto it = vocab_.find(word); it != vocab_.end()) {
        ids->push_back(it->second);
        return OkStatus();
      }
    }
    const bool cacheable = word.size() <= kMaxCachedWordBytes;
    if (cacheable) {
      if (auto it = scratch->word_cache.find(word); it != scratch->word_cache.end()) {
        ids->insert(ids->end(), it->second.begin(), it->second.end());
        return OkStatus();
      }
    }
    std::vector<int32_t> out;
    TSR_RETURN_IF_ERROR(MergeWord(word, &out));
    ids->insert(ids->end(), out.begin(), out.end());
    if (cacheable) {
      if (scratch->word_cache.size() >= kMaxCachedWords) scratch->word_cache.clear();
      scratch->word_cache.emplace(std::string(word), std::move(out));
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
  Status InitialSymbols(std::string_view w, std::vector<Symbol>* symbols) const;
  Status MergeWord(std::string_view w, std::vector<int32_t>* out) const;

  Vocab vocab_;
  ReverseVocab rev_;
  std::unordered_map<uint64_t, MergeInfo> merges_;
  BpeOptions o_;
  std::array<int32_t, 256> byte_ids_;
};

// Splits `w` into per-char symbols (with prefix/suffix, byte fallback and unk handling).
Status BpeModel::InitialSymbols(std::string_view w, std::vector<Symbol>* symbols) const {
  int32_t pending_unk = -1;  // a (possibly fused) unknown run not yet emitted, or -1
  auto add = [&](int32_t id) {
    const auto n = static_cast<int32_t>(symbols->size());
    symbols->push_back({id, n - 1, n + 1, false});
  };
  std::string buf;
  for (size_t i = 0; i < w.size();) {
    const size_t n = Utf8Len(static_cast<unsigned char>(w[i]));
    const bool is_first = i == 0, is_last = i + n >= w.size();
    std::string_view s = w.substr(i, n);
    if ((!is_first && !o_.prefix.empty()) || (is_last && !o_.suffix.empty())) {
      buf.assign(is_first ? "" : o_.prefix).append(s).append(is_last ? o_.suffix : "");
      s = buf;
    }
    i += n;
    if (auto it = vocab_.find(s); it != vocab_.end()) {
      if (pending_unk >= 0) add(pending_unk);
      pending_unk = -1;
      add(it->second);
      continue;
    }
    if (o_.byte_fallback) {
      bool all = true;
      for (char c : s) all &= byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        // Rust does not flush a pending unk here, so neither do we.
        for (char c : s) add(byte_ids_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (!o_.unk_token) continue;  // no unk token: the char is silently dropped
    auto unk = vocab_.find(*o_.unk_token);
    if (unk == vocab_.end()) {
      return InvalidArgument("BPE unk_token '" + *o_.unk_token + "' is not in the vocabulary");
    }
    if (pending_unk >= 0 && !o_.fuse_unk) add(pending_unk);
    pending_unk = unk->second;
  }
  if (pending_unk >= 0) add(pending_unk);
  if (!symbols->empty()) symbols->back().next = -1;
  return OkStatus();
}

Status BpeModel::MergeWord(std::string_view w, std::vector<int32_t>* out) const {
  std::vector<Symbol> sym;
  sym.reserve(w.size());
  TSR_RETURN_IF_ERROR(InitialSymbols(w, &sym));
  std::vector<QueuedMerge> heap;
  auto push = [&](int32_t pos, int32_t left, int32_t right) {
    auto it = merges_.find(PairKey(left, right));
    if (it == merges_.end()) return;
    heap.push_back({pos, it->second.rank, it->second.new_id});
    std::push_heap(heap.begin(), heap.end(), MergeLess());
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i) {
    push(static_cast<int32_t>(i), sym[i].id, sym[i + 1].id);
  }
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), MergeLess());
    const QueuedMerge top = heap.back();
    heap.pop_back();
    Symbol& cur = sym[top.pos];
    if (cur.removed || cur.next == -1) continue;
    const int32_t right_pos = cur.next;
    const Symbol right = sym[right_pos];
    // Skip stale entries: the pair at this position must still produce the same token.
    auto it = merges_.find(PairKey(cur.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    cur.id = top.new_id;
    cur.next = right.next;
    sym[right_pos].removed = true;
    if (right.next >= 0) sym[right.next].prev = top.pos;
    if (cur.prev >= 0) push(cur.prev, sym[cur.prev].id, cur.id);
    if (cur.next >= 0) push(top.pos, cur.id, sym[cur.next].id);
  }
  for (const Symbol& s : sym) {
    if (!s.removed) out->push_back(s.id);
  }
  return OkStatus();
}

// Merges come as "a b" strings (older files) or ["a", "b"] pairs.
StatusOr<std::pair<std::string, std::string>> ParseMerge(const nlohmann::json& m) {
  if (m.is_string()) {
    const std::string s = m.get<std::string>();
    const size_t space = s.find(' ');
    if (space == std::string::npos) {
      return InvalidArgument("bad BPE merge '" + s + "'");
    }
    return std::make_pair(s.substr(0, space), s.substr(space + 1));
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return std::make_pair(m[0].get<std::string>(), m[1].get<std::string>());
  }
  return InvalidArgument("bad BPE merge " + m.dump());
}

}  // namespace

StatusOr<std::unique_ptr<Model>> BpeFromJson(const nlohmann::json& j) {
  Vocab vocab;
  if (!j.contains("vocab")) return InvalidArgument("BPE model without a vocab");
  TSR_RETURN_IF_ERROR(VocabFromJson(j["vocab"], &vocab));
  BpeOptions o;
  if (j.contains("unk_token") && j["unk_token"].is_string()) {
    o.unk_token = j["unk_token"].get<std::string>();
  }
  if (j.contains("continuing_subword_prefix") && j["continuing_subword_prefix"].is_string()) {
    o.prefix = j["continuing_subword_prefix"].get<std::string>();
  }
  if (j.contains("end_of_word_suffix") && j["end_of_word_suffix"].is_string()) {
    o.suffix = j["end_of_word_suffix"].get<std::string>();
  }
  TSR_ASSIGN_OR_RETURN(o.fuse_unk, JsonBool(j, "fuse_unk", false));
  TSR_ASSIGN_OR_RETURN(o.byte_fallback, JsonBool(j, "byte_fallback", false));
  TSR_ASSIGN_OR_RETURN(o.ignore_merges, JsonBool(j, "ignore_merges", false));

  std::unordered_map<uint64_t, MergeInfo> merges;
  auto mit = j.find("merges");
  if (mit != j.end() && !mit->is_null()) {
    if (!mit->is_array()) return InvalidArgument("BPE merges must be an array");
    merges.reserve(mit->size());
    int32_t rank = 0;
    for (const auto& m : *mit) {
      TSR_ASSIGN_OR_RETURN(auto pair, ParseMerge(m));
      const auto a = vocab.find(pair.first), b = vocab.find(pair.second);
      if (a == vocab.end() || b == vocab.end()) {
        return InvalidArgument("BPE merge '" + pair.first + " " + pair.second +
                               "' uses a token missing from the vocab");
      }
      // The merged token drops the right part's continuing-subword prefix (by length, as Rust).
      const std::string right = pair.second.substr(std::min(o.prefix.size(), pair.second.size()));
      const auto merged = vocab.find(pair.first + right);
      if (merged == vocab.end()) {
        return InvalidArgument("BPE merge result '" + pair.first + right + "' is not in the vocab");
      }
      merges[PairKey(a->second, b->second)] = {rank++, merged->second};
    }
  }
  return std::unique_ptr<Model>(new BpeModel(std::move(vocab), std::move(merges), std::move(o)));
}

}  // namespace tessera::text::internal
