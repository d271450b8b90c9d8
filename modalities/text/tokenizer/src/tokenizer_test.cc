// Tokenizer API behaviour beyond the goldens: errors, lookups, thread-safety, streaming.
#include "tessera/text/tokenizer.h"

#include <gtest/gtest.h>

#include <thread>

namespace tessera::text {
namespace {

std::string Fixture(const std::string& name) {
  return std::string(TESSERA_TOKENIZER_FIXTURES) + "/" + name + "/tokenizer.json";
}

TEST(Tokenizer, LoadErrors) {
  EXPECT_EQ(Tokenizer::FromFile("/nonexistent/tokenizer.json").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Tokenizer::FromJson("{not json").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Tokenizer::FromJson(R"({"model":{"type":"Martian"}})").status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(Tokenizer::FromJson(R"({"model":{"type":"WordLevel","vocab":{"a":0}},
      "normalizer":{"type":"Precompiled","precompiled_charsmap":"AAAA"}})")
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(Tokenizer::FromJson(R"({"model":{"type":"WordLevel","vocab":{"a":0}},
      "normalizer":{"type":"Precompiled","precompiled_charsmap":null}})")
                  .ok());
  EXPECT_EQ(Tokenizer::FromJson(R"({"model":{"type":"BPE","vocab":"oops"}})").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Tokenizer, LookupsAndErrors) {
  auto tok = Tokenizer::FromFile(Fixture("llama3"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const Tokenizer& t = **tok;
  const auto bos = t.TokenToId("<|begin_of_text|>");
  ASSERT_TRUE(bos.has_value());
  EXPECT_TRUE(t.IsSpecial(*bos));
  EXPECT_EQ(t.IdToToken(*bos), "<|begin_of_text|>");
  EXPECT_EQ(*bos + 6, t.vocab_size());  // six special tokens appended after the vocab
  EXPECT_FALSE(t.IsSpecial(0));
  EXPECT_FALSE(t.TokenToId("definitely-not-a-token").has_value());
  EXPECT_FALSE(t.IdToToken(t.vocab_size()).has_value());
  const std::vector<int32_t> bad = {t.vocab_size()};
  EXPECT_EQ(t.Decode(bad, false).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(t.Encode("\xC3(", true).status().code(), StatusCode::kInvalidArgument);
  auto ids = t.Encode("Hello world", true);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ((*ids)[0], *bos);
  EXPECT_EQ(*t.Decode(*ids, true), "Hello world");
}

TEST(Tokenizer, ConcurrentEncodesAgree) {
  auto tok = Tokenizer::FromFile(Fixture("qwen25"));
  ASSERT_TRUE(tok.ok());
  std::string text;
  for (int i = 0; i < 200; ++i) text += "The quick brown fox " + std::to_string(i) + " 😀\n";
  const auto want = (*tok)->Encode(text, false);
  ASSERT_TRUE(want.ok());
  std::vector<std::thread> threads;
  std::vector<bool> same(4, false);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto got = (*tok)->Encode(text, false);
      same[i] = got.ok() && *got == *want;
    });
  }
  for (auto& th : threads) th.join();
  for (bool s : same) EXPECT_TRUE(s);
}

TEST(DecodeStream, HoldsBackPartialCharacters) {
  auto tok = Tokenizer::FromFile(Fixture("gpt2"));
  ASSERT_TRUE(tok.ok());
  // An emoji not in the tiny vocab is spelled with byte tokens: nothing may surface until
  // its last byte arrives.
  auto ids = (*tok)->Encode("a\xF0\x9F\xA6\x80", false);  // "a🦀"
  ASSERT_TRUE(ids.ok());
  ASSERT_GE(ids->size(), 3u);
  DecodeStream stream(**tok, false);
  std::string out;
  for (size_t i = 0; i < ids->size(); ++i) {
    auto piece = stream.Step((*ids)[i]);
    ASSERT_TRUE(piece.ok());
    EXPECT_EQ(piece->find("\xEF\xBF\xBD"), std::string::npos) << "partial char leaked";
    if (i + 1 < ids->size()) {
      EXPECT_EQ(out + *piece, "a");
    }
    out += *piece;
  }
  EXPECT_EQ(out, "a\xF0\x9F\xA6\x80");
  EXPECT_EQ(*stream.Flush(), "");
}

TEST(DecodeStream, FlushReleasesIncompleteTail) {
  auto tok = Tokenizer::FromFile(Fixture("llama2"));
  ASSERT_TRUE(tok.ok());
  const auto byte = (*tok)->TokenToId("<0xE4>");
  ASSERT_TRUE(byte.has_value());
  DecodeStream stream(**tok, false);
  EXPECT_EQ(*stream.Step(*byte), "");
  EXPECT_EQ(*stream.Flush(), "\xEF\xBF\xBD");  // what Decode() of the same ids gives
}

}  // namespace
}  // namespace tessera::text
