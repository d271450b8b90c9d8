// Golden test: every fixture under tests/fixtures/tokenizers/ was built with the Python
// `tokenizers` library (make_fixtures.py), which also recorded its outputs in expected.json.
// Ids must match exactly; decoded text must match byte for byte.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tessera/text/tokenizer.h"

namespace tessera::text {
namespace {

std::filesystem::path FixtureRoot() {
  // The environment wins so the test can run against a copied fixture tree.
  if (const char* env = std::getenv("TESSERA_TOKENIZER_FIXTURES")) return env;
  return TESSERA_TOKENIZER_FIXTURES;
}

std::vector<std::string> FixtureNames() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(FixtureRoot(), ec)) {
    if (std::filesystem::exists(entry.path() / "expected.json")) {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

nlohmann::json ReadJson(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream buf;
  buf << in.rdbuf();
  return nlohmann::json::parse(buf.str());
}

std::string Show(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "]";
}

// Streams `ids` one at a time and returns the concatenated output plus the final flush.
StatusOr<std::string> Stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  DecodeStream stream(tok, skip);
  std::string out;
  for (int32_t id : ids) {
    TSR_ASSIGN_OR_RETURN(std::string piece, stream.Step(id));
    out += piece;
  }
  TSR_ASSIGN_OR_RETURN(std::string rest, stream.Flush());
  return out + rest;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, MatchesPythonTokenizers) {
  const auto dir = FixtureRoot() / GetParam();
  auto tok_or = Tokenizer::FromFile((dir / "tokenizer.json").string());
  ASSERT_TRUE(tok_or.ok()) << tok_or.status().ToString();
  const Tokenizer& tok = **tok_or;
  const nlohmann::json expected = ReadJson(dir / "expected.json");
  EXPECT_EQ(tok.vocab_size(), expected["vocab_size"].get<int32_t>());
  int failures = 0;
  for (const auto& c : expected["cases"]) {
    const std::string text = c["text"];
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const auto want_plain = c["ids_no_special"].get<std::vector<int32_t>>();
    SCOPED_TRACE("text: " + nlohmann::json(text).dump() + " tokens: " + c["tokens"].dump());
    auto ids = tok.Encode(text, true);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    auto plain = tok.Encode(text, false);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    bool ok = *ids == want && *plain == want_plain;
    EXPECT_EQ(Show(*ids), Show(want));
    EXPECT_EQ(Show(*plain), Show(want_plain));
    for (bool skip : {false, true}) {
      const std::string want_text = c[skip ? "decoded_skip" : "decoded"];
      auto text_out = tok.Decode(want, skip);
      ASSERT_TRUE(text_out.ok()) << text_out.status().ToString();
      ok &= *text_out == want_text;
      EXPECT_EQ(*text_out, want_text) << "skip_special_tokens=" << skip;
      auto streamed = Stream(tok, want, skip);
      ASSERT_TRUE(streamed.ok()) << streamed.status().ToString();
      ok &= *streamed == want_text;
      EXPECT_EQ(*streamed, want_text) << "DecodeStream, skip_special_tokens=" << skip;
    }
    if (!ok && ++failures > 8) {
      FAIL() << "stopping after repeated failures in fixture " << GetParam();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenTest, ::testing::ValuesIn(FixtureNames()),
                         [](const auto& param_info) { return param_info.param; });

TEST(GoldenFixtures, AllPresent) {
  // Guards against a silently empty parameter list (e.g. a wrong fixture path).
  EXPECT_GE(FixtureNames().size(), 7u) << "fixture root: " << FixtureRoot();
}

}  // namespace
}  // namespace tessera::text
