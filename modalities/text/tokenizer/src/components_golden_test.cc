// Per-component goldens: tests/fixtures/tokenizers/components.json holds, for many normalizer,
// pre-tokenizer and decoder configurations, what the Python `tokenizers` library produced.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "components.h"

namespace tessera::text::internal {
namespace {

nlohmann::json Components() {
  std::filesystem::path root = TESSERA_TOKENIZER_FIXTURES;
  if (const char* env = std::getenv("TESSERA_TOKENIZER_FIXTURES")) root = env;
  std::ifstream in(root / "components.json");
  std::stringstream buf;
  buf << in.rdbuf();
  return nlohmann::json::parse(buf.str());
}

const nlohmann::json& Data() {
  static const nlohmann::json* data = new nlohmann::json(Components());
  return *data;
}

TEST(ComponentGolden, Normalizers) {
  ASSERT_FALSE(Data()["normalizers"].empty());
  for (const auto& entry : Data()["normalizers"]) {
    SCOPED_TRACE(entry["config"].dump());
    auto n = NormalizerFromJson(entry["config"]);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EncodeScratch scratch;
    for (const auto& c : entry["cases"]) {
      NormText t{c[0].get<std::string>(), true};
      ASSERT_TRUE((*n)->Normalize(&t, &scratch).ok());
      EXPECT_EQ(t.text, c[1].get<std::string>()) << "input: " << c[0].dump();
    }
  }
}

TEST(ComponentGolden, PreTokenizers) {
  ASSERT_FALSE(Data()["pre_tokenizers"].empty());
  for (const auto& entry : Data()["pre_tokenizers"]) {
    SCOPED_TRACE(entry["config"].dump());
    auto p = PreTokenizerFromJson(entry["config"]);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EncodeScratch scratch;
    for (const auto& c : entry["cases"]) {
      std::vector<Piece> pieces{Piece{c[0].get<std::string>(), true}};
      ASSERT_TRUE(PreTokenizeAll(**p, &pieces, &scratch).ok());
      std::vector<std::string> got;
      for (const Piece& piece : pieces) got.push_back(piece.text);
      EXPECT_EQ(nlohmann::json(got).dump(), c[1].dump()) << "input: " << c[0].dump();
    }
  }
}

TEST(ComponentGolden, Decoders) {
  ASSERT_FALSE(Data()["decoders"].empty());
  for (const auto& entry : Data()["decoders"]) {
    SCOPED_TRACE(entry["config"].dump());
    auto d = DecoderFromJson(entry["config"]);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    for (const auto& c : entry["cases"]) {
      auto tokens = c[0].get<std::vector<std::string>>();
      ASSERT_TRUE((*d)->DecodeChain(&tokens).ok());
      std::string joined;
      for (const auto& t : tokens) joined += t;
      EXPECT_EQ(joined, c[1].get<std::string>()) << "tokens: " << c[0].dump();
    }
  }
}

}  // namespace
}  // namespace tessera::text::internal
