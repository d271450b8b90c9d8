// UTF-8 and Unicode-property helpers shared by the tokenizer components.
//
// The predicates mirror what Rust's `char` methods and the `regex` crate mean, since those are
// what huggingface/tokenizers uses; utf8proc supplies the categories and case/normal forms.
// All functions are pure and thread-safe.
#ifndef TESSERA_TEXT_TOKENIZER_UNICODE_H_
#define TESSERA_TEXT_TOKENIZER_UNICODE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera::text::internal {

// True when `s` is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Byte length of the UTF-8 sequence starting with `lead` (1 for a stray continuation byte).
inline size_t Utf8Len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xE0) return lead < 0xC0 ? 1 : 2;
  return lead < 0xF0 ? 3 : 4;
}

// Decodes the code point at s[i]; REQUIRES: s is valid UTF-8 and i < s.size() is a boundary.
char32_t DecodeAt(std::string_view s, size_t i);

void AppendUtf8(std::string* out, char32_t cp);

// As Rust's String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
std::string FromUtf8Lossy(std::string_view bytes);

// Rust char::is_whitespace (the White_Space property).
bool IsWhitespace(char32_t c);
// Rust char::is_numeric: general category Nd, Nl or No.
bool IsNumeric(char32_t c);
// General category P* (unicode_categories' is_punctuation).
bool IsPunctuation(char32_t c);
// tokenizers' is_bert_punc: ASCII punctuation or P*.
bool IsBertPunctuation(char32_t c);
// unicode_categories' is_other: Cc, Cf or Co (unassigned code points are not "other").
bool IsOther(char32_t c);
bool IsMarkNonspacing(char32_t c);  // Mn
bool IsMark(char32_t c);            // Mn, Mc, Me
// The Rust regex crate's \w: Alphabetic, M, Nd, Pc, Join_Control.
bool IsWordChar(char32_t c);
bool IsChineseChar(char32_t c);  // the CJK blocks BERT pads with spaces

// Appends Rust's char::to_lowercase(c) (full mapping: U+0130 becomes two chars).
void AppendLowercase(std::string* out, char32_t c);

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };
// Unicode normalization of valid UTF-8 text.
std::string Normalize(std::string_view s, NormalForm form);

// GPT-2's byte <-> printable-char table used by the ByteLevel components.
char32_t ByteToChar(uint8_t b);
// Returns the byte for a ByteLevel char, or -1 when `c` is not one.
int CharToByte(char32_t c);
// The UTF-8 spelling of ByteToChar(b) (precomputed; at most 2 bytes).
std::string_view ByteToCharUtf8(uint8_t b);

}  // namespace tessera::text::internal

#endif  // TESSERA_TEXT_TOKENIZER_UNICODE_H_
