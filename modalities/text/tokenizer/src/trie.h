// A compact byte trie for prefix searches (Unigram lattice, added-token matching).
#ifndef TESSERA_TEXT_TOKENIZER_TRIE_H_
#define TESSERA_TEXT_TOKENIZER_TRIE_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace tessera::text::internal {

// Immutable after Build(); lookups are thread-safe.
class ByteTrie {
 public:
  // Adds `key` with `value` (>= 0); a repeated key keeps the last value. Call before Build().
  void Insert(std::string_view key, int32_t value) {
    if (building_.empty()) building_.emplace_back();
    int32_t node = 0;
    for (unsigned char c : key) {
      auto& edges = building_[node].edges;
      auto it = std::lower_bound(edges.begin(), edges.end(), c,
                                 [](const auto& e, unsigned char b) { return e.first < b; });
      if (it != edges.end() && it->first == c) {
        node = it->second;
      } else {
        const auto next = static_cast<int32_t>(building_.size());
        edges.insert(it, {c, next});
        building_.emplace_back();
        node = next;
      }
    }
    building_[node].value = value;
  }

  // Flattens the nodes so searches touch contiguous arrays.
  void Build() {
    if (building_.empty()) building_.emplace_back();
    nodes_.resize(building_.size());
    labels_.clear();
    targets_.clear();
    first_byte_.fill(false);
    for (size_t i = 0; i < building_.size(); ++i) {
      nodes_[i] = {static_cast<uint32_t>(labels_.size()),
                   static_cast<uint32_t>(building_[i].edges.size()), building_[i].value};
      for (const auto& [label, target] : building_[i].edges) {
        labels_.push_back(label);
        targets_.push_back(target);
        if (i == 0) first_byte_[label] = true;
      }
    }
    building_.clear();
    building_.shrink_to_fit();
  }

  // Calls fn(length, value) for every key that is a prefix of `s`, shortest first.
  template <typename Fn>
  void PrefixSearch(std::string_view s, Fn fn) const {
    int32_t node = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      node = Child(node, static_cast<unsigned char>(s[i]));
      if (node < 0) return;
      if (nodes_[node].value >= 0) fn(i + 1, nodes_[node].value);
    }
  }

  // Longest key that is a prefix of `s`: returns its length (0 if none) and sets *value.
  size_t LongestPrefix(std::string_view s, int32_t* value) const {
    size_t best = 0;
    PrefixSearch(s, [&](size_t len, int32_t v) {
      best = len;
      *value = v;
    });
    return best;
  }

  // True when some key starts with byte `b` (a cheap pre-filter for scanning text).
  bool CanStartWith(unsigned char b) const { return first_byte_[b]; }

 private:
  struct BuildNode {
    std::vector<std::pair<unsigned char, int32_t>> edges;
    int32_t value = -1;
  };
  struct Node {
    uint32_t first;
    uint32_t count;
    int32_t value;
  };

  int32_t Child(int32_t node, unsigned char c) const {
    const Node& n = nodes_[node];
    const auto begin = labels_.begin() + n.first;
    const auto end = begin + n.count;
    const auto it = std::lower_bound(begin, end, c);
    if (it == end || *it != c) return -1;
    return targets_[static_cast<size_t>(it - labels_.begin())];
  }

  std::vector<BuildNode> building_;
  std::vector<Node> nodes_;
  std::vector<unsigned char> labels_;
  std::vector<int32_t> targets_;
  std::array<bool, 256> first_byte_{};
};

}  // namespace tessera::text::internal

#endif  // TESSERA_TEXT_TOKENIZER_TRIE_H_
