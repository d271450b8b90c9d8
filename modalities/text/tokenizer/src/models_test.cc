// Hand-built models with known answers (tokenizers' own unit-test cases where they exist).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "components.h"

namespace tessera::text::internal {
namespace {

std::vector<int32_t> TokenizeWith(const Model& m, std::string_view word) {
  EncodeScratch scratch;
  std::vector<int32_t> ids;
  EXPECT_TRUE(m.Tokenize(word, &scratch, &ids).ok());
  return ids;
}

std::unique_ptr<Model> Make(const char* json) {
  auto m = ModelFromJson(nlohmann::json::parse(json));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : nullptr;
}

using Ids = std::vector<int32_t>;

TEST(Bpe, MergesByRankInBothSpellings) {
  const char* pairs = R"({"type":"BPE","vocab":{"u":0,"n":1,"r":2,"e":3,"l":4,"a":5,"t":6,
    "d":7,"re":8,"at":9,"ed":10,"un":11,"ated":12,"rel":13,"related":14,"unrelated":15},
    "merges":[["r","e"],["a","t"],["e","d"],["u","n"],["at","ed"],["re","l"],["rel","ated"],
    ["un","related"]]})";
  const char* strings = R"({"type":"BPE","vocab":{"u":0,"n":1,"r":2,"e":3,"l":4,"a":5,"t":6,
    "d":7,"re":8,"at":9,"ed":10,"un":11,"ated":12,"rel":13,"related":14,"unrelated":15},
    "merges":["r e","a t","e d","u n","at ed","re l","rel ated","un related"]})";
  for (const char* json : {pairs, strings}) {
    auto m = Make(json);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(TokenizeWith(*m, "unrelated"), (Ids{15}));
    EXPECT_EQ(TokenizeWith(*m, "rel"), (Ids{13}));
    EXPECT_EQ(TokenizeWith(*m, "tu"), (Ids{6, 0}));
    EXPECT_EQ(TokenizeWith(*m, ""), Ids{});
  }
}

TEST(Bpe, UnknownCharsFuseOrNot) {
  const char* base = R"({"type":"BPE","vocab":{"<unk>":0,"a":1,"b":2},"merges":[],
    "unk_token":"<unk>","fuse_unk":%s})";
  char buf[256];
  std::snprintf(buf, sizeof(buf), base, "false");
  EXPECT_EQ(TokenizeWith(*Make(buf), "axyb"), (Ids{1, 0, 0, 2}));
  std::snprintf(buf, sizeof(buf), base, "true");
  EXPECT_EQ(TokenizeWith(*Make(buf), "axyb"), (Ids{1, 0, 2}));
}

TEST(Bpe, ByteFallbackAndIgnoreMerges) {
  auto m = Make(R"({"type":"BPE","vocab":{"<unk>":0,"<0xC3>":1,"<0xA9>":2,"a":3,"b":4,"ab":5,
    "abab":6},"merges":[["a","b"]],"unk_token":"<unk>","byte_fallback":true,
    "ignore_merges":true})");
  EXPECT_EQ(TokenizeWith(*m, "\xC3\xA9"), (Ids{1, 2}));  // é has no token: its UTF-8 bytes
  EXPECT_EQ(TokenizeWith(*m, "z"), (Ids{0}));            // <0x7A> missing -> unk
  EXPECT_EQ(TokenizeWith(*m, "abab"), (Ids{6}));  // whole word in vocab wins with ignore_merges
  EXPECT_EQ(TokenizeWith(*m, "aba"), (Ids{5, 3}));
}

TEST(Bpe, PrefixAndSuffix) {
  auto m = Make(R"({"type":"BPE","vocab":{"a":0,"##b":1,"##c</w>":2,"a##b":3,"ab":4,
    "##b##c</w>":5,"bc</w>":6},"merges":[["a","##b"]],"continuing_subword_prefix":"##",
    "end_of_word_suffix":"</w>"})");
  // "a"+"##b" merges into "ab" (the right side loses its prefix).
  EXPECT_EQ(TokenizeWith(*m, "abc"), (Ids{4, 2}));
}

TEST(Bpe, RejectsInconsistentMerges) {
  EXPECT_FALSE(ModelFromJson(
                   nlohmann::json::parse(R"({"type":"BPE","vocab":{"a":0},"merges":[["a","zz"]]})"))
                   .ok());
  EXPECT_FALSE(ModelFromJson(nlohmann::json::parse(
                                 R"({"type":"BPE","vocab":{"a":0,"b":1},"merges":[["a","b"]]})"))
                   .ok());  // "ab" missing
}

TEST(WordPiece, GreedyLongestMatch) {
  auto m = Make(R"({"type":"WordPiece","vocab":{"[UNK]":0,"un":1,"##aff":2,"##able":3,
    "una":4,"##ff":5},"unk_token":"[UNK]","continuing_subword_prefix":"##",
    "max_input_chars_per_word":8})");
  EXPECT_EQ(TokenizeWith(*m, "unaffable"), (Ids{0}));  // 9 chars > 8
  EXPECT_EQ(TokenizeWith(*m, "unaff"), (Ids{4, 5}));   // "una" is longer than "un"
  EXPECT_EQ(TokenizeWith(*m, "unx"), (Ids{0}));  // any unmatched part -> the whole word is unk
}

TEST(WordLevel, LooksUpWholeWords) {
  auto m = Make(R"({"type":"WordLevel","vocab":{"<unk>":0,"hi":1},"unk_token":"<unk>"})");
  EXPECT_EQ(TokenizeWith(*m, "hi"), (Ids{1}));
  EXPECT_EQ(TokenizeWith(*m, "ho"), (Ids{0}));
}

// ids up to INT32_MAX are valid JSON and tokenizers keeps them in a hash map: a sparse vocab
// must neither allocate a dense table of 2^31 entries (the fuzzer's out-of-memory input) nor
// lose its ids.
TEST(WordLevel, SparseIdsStayCheap) {
  auto m = Make(R"({"type":"WordLevel","vocab":{"<unk>":0,"hi":2147483646},"unk_token":"<unk>"})");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(TokenizeWith(*m, "hi"), (Ids{2147483646}));
  EXPECT_EQ(m->IdLimit(), 2147483647);
  ASSERT_NE(m->IdToToken(2147483646), nullptr);
  EXPECT_EQ(*m->IdToToken(2147483646), "hi");
  EXPECT_EQ(*m->IdToToken(0), "<unk>");
  EXPECT_EQ(m->IdToToken(1), nullptr);
  EXPECT_EQ(m->IdToToken(-1), nullptr);
  auto b = Make(R"({"type":"BPE","vocab":{"a":0,"b":1,"ab":100000000},"merges":["a b"]})");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(TokenizeWith(*b, "ab"), (Ids{100000000}));
  EXPECT_EQ(*b->IdToToken(100000000), "ab");
  EXPECT_EQ(b->IdLimit(), 100000001);
}

TEST(Unigram, ViterbiPicksBestScore) {
  auto m = Make(R"({"type":"Unigram","unk_id":0,"vocab":[["<unk>",0.0],["a",-1.0],["b",-1.0],
    ["ab",-1.5],["abc",-5.0],["c",-2.0]]})");
  EXPECT_EQ(TokenizeWith(*m, "ab"), (Ids{3}));      // -1.5 beats -2.0
  EXPECT_EQ(TokenizeWith(*m, "abc"), (Ids{3, 5}));  // -3.5 beats -5.0
  EXPECT_EQ(TokenizeWith(*m, "xya"), (Ids{0, 1}));  // unknown run fused into one <unk>
  EXPECT_EQ(m->IdToToken(3) ? *m->IdToToken(3) : "", "ab");
}

TEST(Unigram, ByteFallbackForUnknownRuns) {
  auto m = Make(R"({"type":"Unigram","unk_id":0,"byte_fallback":true,"vocab":[["<unk>",0.0],
    ["a",-1.0],["<0x78>",0.0],["<0x79>",0.0]]})");
  EXPECT_EQ(TokenizeWith(*m, "axy"), (Ids{1, 2, 3}));
  EXPECT_EQ(TokenizeWith(*m, "az"), (Ids{1, 0}));  // <0x7A> missing -> unk
}

}  // namespace
}  // namespace tessera::text::internal
