// libFuzzer target: arbitrary bytes as a tokenizer.json (untrusted input), and, when the input
// parses, arbitrary text through Encode/Decode/DecodeStream. The first line of the input is the
// text to encode; the rest is the JSON document.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tessera/text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  size_t nl = all.find('\n');
  std::string_view text = nl == std::string_view::npos ? std::string_view() : all.substr(0, nl);
  std::string_view json = nl == std::string_view::npos ? all : all.substr(nl + 1);
  auto tok = tessera::text::Tokenizer::FromJson(json);
  if (!tok.ok()) return 0;
  for (bool special : {false, true}) {
    auto ids = (*tok)->Encode(text, special);
    if (!ids.ok()) continue;
    (void)(*tok)->Decode(*ids, !special);
    tessera::text::DecodeStream stream(**tok, special);
    for (int32_t id : *ids) (void)stream.Step(id);
    (void)stream.Flush();
  }
  return 0;
}
