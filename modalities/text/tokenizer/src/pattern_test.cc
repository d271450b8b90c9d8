#include "pattern.h"

#include <gtest/gtest.h>

namespace tessera::text::internal {
namespace {

std::vector<std::string> Pieces(std::string_view s, SplitBehavior b,
                                const std::vector<Span>& spans) {
  std::vector<std::pair<size_t, size_t>> ranges;
  ApplyBehavior(spans, b, &ranges);
  std::vector<std::string> out;
  for (auto [start, end] : ranges) {
    if (end > start) out.emplace_back(s.substr(start, end - start));
  }
  return out;
}

// The examples from tokenizers' SplitDelimiterBehavior docs.
TEST(Pattern, SplitBehaviors) {
  const std::string s = "the-final--countdown";
  std::vector<Span> spans;
  FindCharMatches(
      s, [](char32_t c) { return c == '-'; }, &spans);
  using V = std::vector<std::string>;
  EXPECT_EQ(Pieces(s, SplitBehavior::kRemoved, spans), (V{"the", "final", "countdown"}));
  EXPECT_EQ(Pieces(s, SplitBehavior::kIsolated, spans),
            (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(Pieces(s, SplitBehavior::kMergedWithPrevious, spans),
            (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(Pieces(s, SplitBehavior::kMergedWithNext, spans),
            (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(Pieces(s, SplitBehavior::kContiguous, spans),
            (V{"the", "-", "final", "--", "countdown"}));
}

TEST(Pattern, LiteralAndRegexMatches) {
  RegexScratch scratch;
  std::vector<Span> spans;
  auto lit = Pattern::Literal("ab");
  ASSERT_TRUE(lit.FindMatches("xabab", &scratch, &spans).ok());
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_FALSE(spans[0].match);
  EXPECT_TRUE(spans[1].match && spans[2].match);

  auto re = Pattern::FromRegex(R"(\s+)", RegexSyntax::kOniguruma);
  ASSERT_TRUE(re.ok());
  ASSERT_TRUE(re->FindMatches("a \u3000b", &scratch, &spans).ok());
  ASSERT_EQ(spans.size(), 3u);  // U+3000 is White_Space
  EXPECT_TRUE(spans[1].match);

  ASSERT_TRUE(re->FindMatches("", &scratch, &spans).ok());
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_FALSE(spans[0].match);
}

TEST(Pattern, EmptyMatchesAdvanceLikeRust) {
  auto re = Regex::Compile("x*", RegexSyntax::kOniguruma);
  ASSERT_TRUE(re.ok());
  RegexScratch scratch;
  std::vector<std::pair<size_t, size_t>> m;
  ASSERT_TRUE((*re)->FindAll("axxb", &scratch, &m).ok());
  // Rust: (0,0), (1,3), (4,4) — no empty match right after the "xx" match.
  using P = std::pair<size_t, size_t>;
  EXPECT_EQ(m, (std::vector<P>{{0, 0}, {1, 3}, {4, 4}}));
}

TEST(Pattern, TranslatesOnigurumaClasses) {
  EXPECT_EQ(TranslateRegex(R"(\s+(?!\S))", RegexSyntax::kOniguruma),
            R"(\p{White_Space}+(?!\P{White_Space}))");
  EXPECT_EQ(TranslateRegex(R"([^\s\p{L}])", RegexSyntax::kOniguruma), R"([^\p{White_Space}\p{L}])");
  EXPECT_EQ(TranslateRegex(R"(\w)", RegexSyntax::kOniguruma), R"([\p{L}\p{M}\p{Nd}\p{Pc}])");
  EXPECT_EQ(TranslateRegex(R"(\h)", RegexSyntax::kOniguruma), "[0-9a-fA-F]");
  EXPECT_EQ(TranslateRegex(R"([\]\\])", RegexSyntax::kOniguruma), R"([\]\\])");
  EXPECT_FALSE(Regex::Compile("(unclosed", RegexSyntax::kOniguruma).ok());
}

TEST(Pattern, ParsesBehaviorNames) {
  EXPECT_EQ(*ParseSplitBehavior("MergedWithPrevious"), SplitBehavior::kMergedWithPrevious);
  EXPECT_EQ(*ParseSplitBehavior("merged_with_next"), SplitBehavior::kMergedWithNext);
  EXPECT_FALSE(ParseSplitBehavior("sideways").ok());
}

}  // namespace
}  // namespace tessera::text::internal
