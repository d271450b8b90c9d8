// The Precompiled normalizer (SentencePiece nmt_nfkc charsmap) and pair encoding against the
// tokenizers library's outputs recorded by tests/fixtures/embedding/make_fixtures.py.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "components.h"
#include "tessera/text/tokenizer.h"

namespace tessera::text {
namespace {

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

std::string Fixture(const std::string& model, const std::string& file) {
  return std::string(TESSERA_EMBEDDING_FIXTURES) + "/" + model + "/" + file;
}

TEST(Precompiled, MatchesTokenizersNormalizeStr) {
  const nlohmann::json tok = ReadJson(Fixture("xlmr_cls", "tokenizer.json"));
  const nlohmann::json expected = ReadJson(Fixture("xlmr_cls", "expected.json"));
  auto norm = internal::NormalizerFromJson(tok["normalizer"]["normalizers"][0]);
  ASSERT_TRUE(norm.ok()) << norm.status().ToString();
  ASSERT_NE(*norm, nullptr);
  int checked = 0;
  for (const auto& c : expected["precompiled_cases"]) {
    internal::NormText t{c[0].get<std::string>(), true};
    internal::EncodeScratch scratch;
    ASSERT_TRUE((*norm)->Normalize(&t, &scratch).ok());
    EXPECT_EQ(t.text, c[1].get<std::string>()) << "input: " << c[0].get<std::string>();
    ++checked;
  }
  EXPECT_GT(checked, 15);
}

TEST(Precompiled, EncodeMatchesTokenizers) {
  auto tok = Tokenizer::FromFile(Fixture("xlmr_cls", "tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const nlohmann::json expected = ReadJson(Fixture("xlmr_cls", "expected.json"));
  for (const auto& c : expected["precompiled_encode_cases"]) {
    auto ids = (*tok)->Encode(c[0].get<std::string>(), true);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, c[1].get<std::vector<int32_t>>()) << "input: " << c[0].get<std::string>();
  }
}

TEST(Precompiled, RejectsMalformedMaps) {
  auto bad = [](const std::string& b64) {
    return internal::NormalizerFromJson(
               nlohmann::json{{"type", "Precompiled"}, {"precompiled_charsmap", b64}})
        .status()
        .code();
  };
  EXPECT_EQ(bad("AAAA"), StatusCode::kInvalidArgument);      // shorter than the header
  EXPECT_EQ(bad("////AAAA"), StatusCode::kInvalidArgument);  // trie past the end
  EXPECT_EQ(bad("not base64!"), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad("BAAAAAAAAAA="), StatusCode::kOk);  // one zero unit: matches nothing
}

// Cross-encoder pairs: BertProcessing-style template with type ids 1 for B (bert_ce) and
// RobertaProcessing-style "</s> </s>" joins with type ids 0 (xlmr_ce).
TEST(PairEncoding, MatchesTokenizers) {
  for (const std::string model : {"bert_ce", "xlmr_ce"}) {
    auto tok = Tokenizer::FromFile(Fixture(model, "tokenizer.json"));
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    const nlohmann::json e = ReadJson(Fixture(model, "expected.json"));
    const std::string query = e["query"];
    for (size_t i = 0; i < e["documents"].size(); ++i) {
      auto enc = (*tok)->EncodePair(query, e["documents"][i].get<std::string>(), true);
      ASSERT_TRUE(enc.ok()) << enc.status().ToString();
      EXPECT_EQ(enc->ids, e["input_ids"][i].get<std::vector<int32_t>>()) << model << " " << i;
      EXPECT_EQ(enc->type_ids, e["token_type_ids"][i].get<std::vector<int32_t>>()) << model;
    }
    EXPECT_EQ((*tok)->NumSpecialTokensToAdd(true), model == "bert_ce" ? 3 : 4);
    EXPECT_EQ((*tok)->NumSpecialTokensToAdd(false), 2);
  }
}

TEST(PairEncoding, ProcessorKinds) {
  const std::string vocab =
      R"("model":{"type":"WordLevel","vocab":{"a":0,"b":1,"[CLS]":2,"[SEP]":3},"unk_token":"a"},"pre_tokenizer":{"type":"WhitespaceSplit"})";
  auto bert = Tokenizer::FromJson(
      "{" + vocab +
      R"(,"post_processor":{"type":"BertProcessing","sep":["[SEP]",3],"cls":["[CLS]",2]}})");
  ASSERT_TRUE(bert.ok()) << bert.status().ToString();
  auto enc = (*bert)->EncodePair("a a", "b", true);
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(enc->ids, (std::vector<int32_t>{2, 0, 0, 3, 1, 3}));
  EXPECT_EQ(enc->type_ids, (std::vector<int32_t>{0, 0, 0, 0, 1, 1}));
  enc = (*bert)->EncodePair("a", "b", false);
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(enc->ids, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(enc->type_ids, (std::vector<int32_t>{0, 1}));

  auto single_only =
      Tokenizer::FromJson("{" + vocab + R"(,"post_processor":{"type":"TemplateProcessing",
      "single":[{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
      "pair":null,"special_tokens":{"[CLS]":{"id":"[CLS]","ids":[2],"tokens":["[CLS]"]}}}})");
  ASSERT_TRUE(single_only.ok()) << single_only.status().ToString();
  EXPECT_EQ((*single_only)->EncodePair("a", "b", true).status().code(),
            StatusCode::kInvalidArgument);
  auto one = (*single_only)->Encode("b", true);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, (std::vector<int32_t>{2, 1}));
}

}  // namespace
}  // namespace tessera::text
