#include "unicode.h"

#include <gtest/gtest.h>

namespace tessera::text::internal {
namespace {

TEST(Unicode, ValidatesUtf8) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

TEST(Unicode, LossyConversionFollowsRustMaximalSubparts) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(FromUtf8Lossy("ok"), "ok");
  EXPECT_EQ(FromUtf8Lossy("\xE4\xBD"), fffd);  // one incomplete sequence -> one U+FFFD
  EXPECT_EQ(FromUtf8Lossy("\xE4\xBDx"), fffd + "x");
  EXPECT_EQ(FromUtf8Lossy("\x80\x80"), fffd + fffd);  // stray continuations: one each
  EXPECT_EQ(FromUtf8Lossy("\xF0\x9F\x98"), fffd);
  EXPECT_EQ(FromUtf8Lossy("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogate lead is invalid
  EXPECT_EQ(FromUtf8Lossy("\xC3\xA9\xFF"), "\xC3\xA9" + fffd);
}

TEST(Unicode, ByteLevelAlphabet) {
  EXPECT_EQ(ByteToChar(' '), U'\u0120');   // 'Ġ'
  EXPECT_EQ(ByteToChar('\n'), U'\u010A');  // 'Ċ'
  EXPECT_EQ(ByteToChar('a'), U'a');
  for (int b = 0; b < 256; ++b) EXPECT_EQ(CharToByte(ByteToChar(static_cast<uint8_t>(b))), b);
  EXPECT_EQ(CharToByte(U'\u4E00'), -1);
}

TEST(Unicode, Properties) {
  EXPECT_TRUE(IsWhitespace(U'\u3000'));
  EXPECT_TRUE(IsWhitespace(U'\u0085'));
  EXPECT_FALSE(IsWhitespace(U'\u200B'));  // zero width space is not White_Space
  EXPECT_TRUE(IsWordChar(U'\u0301'));     // marks are \w for the Rust regex crate
  EXPECT_TRUE(IsWordChar(U'_'));
  EXPECT_FALSE(IsWordChar(U'-'));
  EXPECT_TRUE(IsBertPunctuation(U'$'));  // ASCII symbol counts as punctuation for BERT
  EXPECT_TRUE(IsBertPunctuation(U'\u3002'));
  EXPECT_TRUE(IsNumeric(U'\u2460'));  // circled digit one (No)
  EXPECT_TRUE(IsOther(U'\u200B'));    // Cf
  EXPECT_FALSE(IsOther(U'\uFFFE'));   // unassigned is not "other" (unicode_categories)
  EXPECT_TRUE(IsChineseChar(U'\u4E2D'));
  EXPECT_FALSE(IsChineseChar(U'\u3042'));  // hiragana
}

TEST(Unicode, LowercaseAndNormalForms) {
  std::string s;
  AppendLowercase(&s, U'\u0130');  // İ -> i + combining dot above
  EXPECT_EQ(s, "i\xCC\x87");
  s.clear();
  AppendLowercase(&s, U'\u03A3');  // Σ -> σ (per char: no final-sigma context)
  EXPECT_EQ(s, "\xCF\x83");
  EXPECT_EQ(Normalize("e\xCC\x81", NormalForm::kNfc), "\xC3\xA9");
  EXPECT_EQ(Normalize("\xC3\xA9", NormalForm::kNfd), "e\xCC\x81");
  EXPECT_EQ(Normalize("\xEF\xAC\x81", NormalForm::kNfkc), "fi");
  // The ASCII fast path must still let a mark compose with the ASCII letter before it.
  EXPECT_EQ(Normalize("xe\xCC\x81y \xC3\xA9", NormalForm::kNfc), "x\xC3\xA9y \xC3\xA9");
  EXPECT_EQ(Normalize("a\xC2\xA0"
                      "b\xC2\xB2",
                      NormalForm::kNfkc),
            "a b2");
}

}  // namespace
}  // namespace tessera::text::internal
