// tokenizer_bench FILE tokenizer.json [--repeat N]
// Encodes FILE (whole, as one string) N times and decodes the ids once; prints one JSON line:
// {"bytes":..., "tokens":..., "encode_mb_s":..., "encode_tok_s":..., "decode_mb_s":...}
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "tessera/text/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s FILE tokenizer.json [--repeat N]\n", argv[0]);
    return 2;
  }
  int repeat = 3;
  if (argc >= 5 && std::strcmp(argv[3], "--repeat") == 0) repeat = std::max(1, std::atoi(argv[4]));
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  auto tok = tessera::text::Tokenizer::FromFile(argv[2]);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().ToString().c_str());
    return 1;
  }
  using Clock = std::chrono::steady_clock;
  size_t tokens = 0;
  double best = 1e30;
  std::vector<int32_t> ids;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = Clock::now();
    auto out = (*tok)->Encode(text, false);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!out.ok()) {
      std::fprintf(stderr, "%s\n", out.status().ToString().c_str());
      return 1;
    }
    best = std::min(best, s);
    tokens = out->size();
    ids = std::move(out).value();
  }
  const auto t0 = Clock::now();
  auto decoded = (*tok)->Decode(ids, false);
  const double dec_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!decoded.ok()) {
    std::fprintf(stderr, "%s\n", decoded.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "{\"bytes\":%zu,\"tokens\":%zu,\"encode_mb_s\":%.2f,\"encode_tok_s\":%.0f,"
      "\"decode_mb_s\":%.2f,\"roundtrip_equal\":%s}\n",
      text.size(), tokens, text.size() / best / 1e6, tokens / best, decoded->size() / dec_s / 1e6,
      *decoded == text ? "true" : "false");
  return 0;
}
