// Every embedding / rerank fixture (tests/fixtures/embedding, made by make_fixtures.py) against
// what sentence-transformers and transformers computed on the same float32 checkpoint:
//  - embeddings: cosine >= 0.99999 with the torch reference and with SentenceTransformer.encode;
//  - rerank scores within 1e-4 of the reference (and CrossEncoder.predict where it saw the
//    same ids);
//  - token ids equal to the tokenizers library's;
//  - results independent of packing (alone vs packed with the others, and across budgets).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tessera/core/plugin_loader.h"
#include "tessera/embedding/embedding.h"
#include "tessera/rerank/rerank.h"
#include "tessera/testing/test_runtime.h"

namespace tessera::embedding {
namespace {

constexpr double kMinCosine = 0.99999;
constexpr double kScoreTolerance = 1e-4;

std::string FixtureDir() {
  const char* d = std::getenv("TESSERA_EMBEDDING_FIXTURES");
  return d ? d : "";
}

using Runtime = ::tessera::testing::TestRuntime;

double Cosine(const std::vector<float>& a, const std::vector<double>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    ab += a[i] * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += b[i] * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

struct Fixture {
  nlohmann::json expected;
  std::unique_ptr<EncoderModel> model;
};

Fixture Load(const std::string& name) {
  Fixture f;
  const std::string dir = FixtureDir() + "/" + name;
  std::ifstream in(dir + "/expected.json");
  f.expected = nlohmann::json::parse(in);
  auto m = EncoderModel::Load(dir, Runtime::Get().devices());
  EXPECT_TRUE(m.ok()) << name << ": " << m.status().ToString();
  if (m.ok()) f.model = std::move(m).value();
  return f;
}

class EmbeddingGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(EmbeddingGolden, MatchesSentenceTransformers) {
  Fixture f = Load(GetParam());
  ASSERT_NE(f.model, nullptr);
  const nlohmann::json& e = f.expected;
  EncoderModel& m = *f.model;
  EXPECT_EQ(m.info().kind, ModelKind::kEmbedding);
  EXPECT_EQ(PoolingName(m.info().pooling), e["pooling"].get<std::string>());
  EXPECT_EQ(m.info().normalize, e["normalize"].get<bool>());
  EXPECT_EQ(m.max_tokens(), e["max_seq_length"].get<int64_t>());
  const auto texts = e["texts"].get<std::vector<std::string>>();
  std::vector<EmbedInput> inputs;
  for (const auto& t : texts) inputs.push_back(EmbedInput::Text(t));

  // Token ids, and the over-long inputs refused unless truncation is asked for.
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto want = e["input_ids"][i].get<std::vector<int32_t>>();
    auto seq = TokenizeForEmbedding(m, inputs[i], false);
    if (static_cast<int64_t>(want.size()) > m.max_tokens()) {
      EXPECT_EQ(seq.status().code(), StatusCode::kInvalidArgument) << texts[i];
      continue;
    }
    ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    EXPECT_EQ(seq->ids, want) << texts[i];
  }

  // All inputs in one pass and in passes of at most 40 tokens; truncation on.
  for (int64_t budget : {8192, 40}) {
    EmbedOptions opt;
    opt.truncate = true;
    opt.max_batch_tokens = budget;
    auto r = Embed(m, inputs, opt);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->embeddings.size(), texts.size());
    const bool st_same = e.value("st_same_ids", false);
    for (size_t i = 0; i < texts.size(); ++i) {
      const bool truncated = e["input_ids"][i].size() > static_cast<size_t>(m.max_tokens());
      if (!truncated) {
        EXPECT_GE(Cosine(r->embeddings[i], e["embeddings"][i].get<std::vector<double>>()),
                  kMinCosine)
            << GetParam() << " torch reference, text " << i;
      }
      if (st_same && e.contains("st_embeddings")) {
        EXPECT_GE(Cosine(r->embeddings[i], e["st_embeddings"][i].get<std::vector<double>>()),
                  kMinCosine)
            << GetParam() << " sentence-transformers, text " << i;
      }
    }
  }

  // Packing independence: each input alone equals the same input packed with the others.
  EmbedOptions opt;
  opt.truncate = true;
  auto packed = Embed(m, inputs, opt);
  ASSERT_TRUE(packed.ok());
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto alone = Embed(m, std::span<const EmbedInput>(&inputs[i], 1), opt);
    ASSERT_TRUE(alone.ok());
    for (size_t k = 0; k < alone->embeddings[0].size(); ++k)
      ASSERT_NEAR(alone->embeddings[0][k], packed->embeddings[i][k], 1e-6) << "input " << i;
  }

  // The long text: an error by default; truncated, what sentence-transformers gives.
  std::vector<EmbedInput> long_input = {EmbedInput::Text(e["long_text"].get<std::string>())};
  EXPECT_EQ(Embed(m, long_input, EmbedOptions{}).status().code(), StatusCode::kInvalidArgument);
  auto lr = Embed(m, long_input, opt);
  ASSERT_TRUE(lr.ok()) << lr.status().ToString();
  EXPECT_EQ(lr->token_counts[0], m.max_tokens());
  EXPECT_GE(Cosine(lr->embeddings[0], e["long_embedding"].get<std::vector<double>>()), kMinCosine);
  if (e.contains("st_long_embedding")) {
    EXPECT_GE(Cosine(lr->embeddings[0], e["st_long_embedding"].get<std::vector<double>>()),
              kMinCosine);
  }

  // Token-id input gives the text's embedding; Matryoshka dimensions and the normalize override.
  auto ids = m.tokenizer().Encode(texts[1], false);
  ASSERT_TRUE(ids.ok());
  std::vector<EmbedInput> by_ids = {EmbedInput::Ids(*ids)};
  auto ri = Embed(m, by_ids, opt);
  ASSERT_TRUE(ri.ok());
  for (size_t k = 0; k < ri->embeddings[0].size(); ++k)
    ASSERT_NEAR(ri->embeddings[0][k], packed->embeddings[1][k], 1e-6);
  EmbedOptions dim = opt;
  dim.dimensions = 8;
  dim.normalize = true;
  auto rd = Embed(m, std::span<const EmbedInput>(&inputs[1], 1), dim);
  ASSERT_TRUE(rd.ok());
  ASSERT_EQ(rd->embeddings[0].size(), 8u);
  double norm = 0;
  for (float x : rd->embeddings[0]) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  std::vector<double> head(8);
  for (int k = 0; k < 8; ++k) head[k] = e["embeddings"][1][k].get<double>();
  EXPECT_GE(Cosine(rd->embeddings[0], head), kMinCosine);
  dim.dimensions = m.info().hidden + 1;
  EXPECT_EQ(Embed(m, by_ids, dim).status().code(), StatusCode::kInvalidArgument);
  std::vector<std::string> docs = {"x"};
  EXPECT_EQ(rerank::Rerank(m, "q", docs, {}).status().code(), StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EmbeddingGolden,
                         ::testing::Values("bert_mean", "roberta_max", "xlmr_cls", "qwen3_embed"));

class RerankGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(RerankGolden, MatchesReference) {
  Fixture f = Load(GetParam());
  ASSERT_NE(f.model, nullptr);
  const nlohmann::json& e = f.expected;
  EncoderModel& m = *f.model;
  const auto docs = e["documents"].get<std::vector<std::string>>();
  const std::string query = e["query"];
  for (int64_t budget : {8192, 30}) {
    rerank::RerankOptions opt;
    opt.max_batch_tokens = budget;
    auto r = rerank::Rerank(m, query, docs, opt);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->scores.size(), docs.size());
    for (size_t i = 0; i < docs.size(); ++i) {
      EXPECT_EQ(r->token_counts[i], static_cast<int32_t>(e["input_ids"][i].size())) << i;
      EXPECT_NEAR(r->scores[i], e["scores"][i].get<double>(), kScoreTolerance) << GetParam() << i;
      // CrossEncoder.predict, where transformers tokenized the pair the same way.
      if (e.contains("st_scores") && e["st_input_ids"][i] == e["input_ids"][i]) {
        EXPECT_NEAR(r->scores[i], e["st_scores"][i].get<double>(), kScoreTolerance) << i;
      }
    }
    auto ranked = rerank::RankByScore(r->scores, 2);
    ASSERT_EQ(ranked.size(), 2u);
    EXPECT_GE(ranked[0].relevance_score, ranked[1].relevance_score);
  }
  // The model alone, on the reference's ids: the classifier / [no, yes] logits.
  std::vector<TokenSequence> seqs;
  for (size_t i = 0; i < docs.size(); ++i) {
    TokenSequence s{e["input_ids"][i].get<std::vector<int32_t>>(), {}};
    if (e.contains("token_type_ids"))
      s.type_ids = e["token_type_ids"][i].get<std::vector<int32_t>>();
    seqs.push_back(std::move(s));
  }
  auto rows = m.Forward(seqs, 8192);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  for (size_t i = 0; i < docs.size(); ++i) {
    const nlohmann::json want =
        e.contains("logits") ? nlohmann::json::array({e["logits"][i]}) : e["no_yes_logits"][i];
    ASSERT_EQ((*rows)[i].size(), want.size());
    for (size_t k = 0; k < want.size(); ++k)
      EXPECT_NEAR((*rows)[i][k], want[k].get<double>(), 1e-3) << GetParam() << " logit " << i;
  }
  if (e.contains("prefix")) {
    const text::Tokenizer& tok = m.tokenizer();
    for (size_t i = 0; i < docs.size(); ++i) {
      auto ids = *tok.Encode(e["prefix"].get<std::string>(), false);
      auto body = *tok.Encode("<Instruct>: " + e["instruction"].get<std::string>() +
                                  "\n<Query>: " + query + "\n<Document>: " + docs[i],
                              true);
      auto suffix = *tok.Encode(e["suffix"].get<std::string>(), false);
      ids.insert(ids.end(), body.begin(), body.end());
      ids.insert(ids.end(), suffix.begin(), suffix.end());
      EXPECT_EQ(ids, e["input_ids"][i].get<std::vector<int32_t>>()) << "prompt ids " << i;
    }
  }
  std::vector<EmbedInput> in = {EmbedInput::Text("x")};
  EXPECT_EQ(Embed(m, in, {}).status().code(), StatusCode::kFailedPrecondition);
  // A pair past the limit: an error unless truncation is asked for.
  std::string words;
  for (int i = 0; i < 800; ++i) words += "relevance ranking query document ";
  std::vector<std::string> long_doc = {words};
  EXPECT_EQ(rerank::Rerank(m, query, long_doc, {}).status().code(), StatusCode::kInvalidArgument);
  rerank::RerankOptions trunc;
  trunc.truncate = true;
  auto t = rerank::Rerank(m, query, long_doc, trunc);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_LE(t->token_counts[0], m.max_tokens());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RerankGolden,
                         ::testing::Values("bert_ce", "xlmr_ce", "qwen3_reranker"));

TEST(DetectModel, KindsAndErrors) {
  auto info = DetectModel(FixtureDir() + "/qwen3_reranker");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->kind, ModelKind::kYesNoReranker);
  info = DetectModel(FixtureDir() + "/bert_ce");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, ModelKind::kCrossEncoder);
  EXPECT_EQ(info->num_labels, 1);
  EXPECT_EQ(DetectModel(FixtureDir() + "/missing").status().code(), StatusCode::kNotFound);
  // A causal LM without embedding or rerank markers is a chat model.
  const std::string chat = FixtureDir() + "/../models/qwen3_bf16_headdim";
  if (std::filesystem::exists(chat)) {
    EXPECT_EQ(DetectModel(chat).status().code(), StatusCode::kFailedPrecondition);
  }
}

// In the Hugging Face cache a snapshot folder is named by its commit: the repo name decides.
TEST(DetectModel, RerankerInTheHubCacheIsKnownByItsRepoName) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("tsr_detect_" + std::to_string(::getpid()));
  const fs::path snap =
      root / "models--Qwen--Qwen3-Reranker-0.6B" / "snapshots" / std::string(40, 'a');
  const fs::path plain = root / "some-folder";
  for (const fs::path& dir : {snap, plain}) {
    fs::create_directories(dir);
    nlohmann::json config;
    std::ifstream(FixtureDir() + "/qwen3_reranker/config.json") >> config;
    config.erase("_name_or_path");
    std::ofstream(dir / "config.json") << config.dump();
  }
  auto info = DetectModel(snap.string());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->kind, ModelKind::kYesNoReranker);
  EXPECT_EQ(DetectModel(plain.string()).status().code(), StatusCode::kFailedPrecondition);
  fs::remove_all(root);
}

}  // namespace
}  // namespace tessera::embedding
