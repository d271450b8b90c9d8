// quant_accuracy: how far `--quantize q8|q4` moves a model's next-token distributions.
//
//   quant_accuracy --model DIR --plugin libtessera_backend_cpu.so [--text bench/heldout_kjv.txt]
//                  [--random-ids N] [--window 128] [--no-head] [--cache-dir DIR]
//
// Teacher-forces the same tokens through the unquantized model and each quantized one (windows
// of --window tokens, each from an empty cache) and prints one JSON line per quant kind:
// KL(P_ref || P_quant) per position (mean, p50, p99, max, in nats) and top-1 agreement (the
// share of positions whose argmax is the same). Tokens come from the text through the model's
// tokenizer, or with --random-ids N from a fixed-seed generator (for the random benchmark
// checkpoints, whose tokenizer knows no words).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tessera/core/device.h"
#include "tessera/core/plugin_loader.h"
#include "tessera/text/generate.h"
#include "tessera/text/text_model.h"

namespace tessera {
namespace {

struct Flags {
  std::string model, plugin, text, cache_dir;
  int64_t random_ids = 0;
  int64_t window = 128;
  bool head = true;  // --no-head: keep the LM head unquantized
  int threads = 2;
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--model")
      f->model = next();
    else if (a == "--plugin")
      f->plugin = next();
    else if (a == "--text")
      f->text = next();
    else if (a == "--cache-dir")
      f->cache_dir = next();
    else if (a == "--random-ids")
      f->random_ids = std::stoll(next());
    else if (a == "--window")
      f->window = std::stoll(next());
    else if (a == "--threads")
      f->threads = std::stoi(next());
    else if (a == "--no-head")
      f->head = false;
    else
      return false;
  }
  return !f->model.empty() && !f->plugin.empty() && (!f->text.empty() || f->random_ids > 0);
}

StatusOr<std::vector<int32_t>> Tokens(const text::TextModel& m, const Flags& f) {
  if (f.random_ids > 0) {
    std::mt19937_64 rng(1234);
    std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(m.vocab_size() - 1));
    std::vector<int32_t> ids(static_cast<size_t>(f.random_ids));
    for (auto& t : ids) t = id(rng);
    return ids;
  }
  std::ifstream in(f.text);
  if (!in) return NotFound("cannot read '" + f.text + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return m.tokenizer().Encode(ss.str(), false);
}

// Log-probabilities of every position, window by window.
StatusOr<std::vector<float>> Score(text::TextModel& m, const std::vector<int32_t>& ids,
                                   int64_t window) {
  std::vector<float> all;
  for (size_t s = 0; s < ids.size(); s += static_cast<size_t>(window)) {
    const size_t e = std::min(ids.size(), s + static_cast<size_t>(window));
    TSR_ASSIGN_OR_RETURN(auto lp, text::ScoreTokens(m, {ids.begin() + s, ids.begin() + e}));
    all.insert(all.end(), lp.begin(), lp.end());
  }
  return all;
}

nlohmann::json Compare(const std::vector<float>& ref, const std::vector<float>& q, size_t vocab) {
  const size_t n = ref.size() / vocab;
  std::vector<double> kl(n);
  size_t agree = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* p = ref.data() + i * vocab;
    const float* r = q.data() + i * vocab;
    double k = 0;
    for (size_t v = 0; v < vocab; ++v) k += std::exp(double(p[v])) * (double(p[v]) - r[v]);
    kl[i] = std::max(0.0, k);
    agree += std::max_element(p, p + vocab) - p == std::max_element(r, r + vocab) - r;
  }
  double mean = 0;
  for (double k : kl) mean += k;
  mean /= static_cast<double>(n);
  std::vector<double> sorted = kl;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double f) { return sorted[std::min(n - 1, static_cast<size_t>(f * n))]; };
  return {{"positions", n},
          {"kl_mean", mean},
          {"kl_p50", pct(0.5)},
          {"kl_p99", pct(0.99)},
          {"kl_max", sorted.back()},
          {"top1_agreement", static_cast<double>(agree) / static_cast<double>(n)}};
}

int Run(const Flags& f) {
  LoaderOptions o;
  o.explicit_paths.push_back(f.plugin);
  // As engine --quantize runs it: int8 activations against Q8/Q4 weights.
  o.plugin_options["cpu"] = {{"threads", std::to_string(f.threads)}, {"int8_dot", "on"}};
  auto registry = PluginRegistry::Discover(o);
  Plugin* cpu = registry->Find("cpu");
  if (cpu == nullptr) {
    std::fprintf(stderr, "error: no cpu plugin at %s\n", f.plugin.c_str());
    return 1;
  }
  auto dev = Device::Open(cpu, 0);
  if (!dev.ok()) return std::fprintf(stderr, "error: %s\n", dev.status().ToString().c_str()), 1;
  std::vector<float> ref;
  std::vector<int32_t> ids;
  for (QuantKind kind : {QuantKind::kNone, QuantKind::kQ8, QuantKind::kQ4}) {
    text::TextModelOptions mo;
    mo.kv_tokens = f.window + 16;
    mo.quantize = kind;
    mo.quantize_head = f.head;
    mo.quant_cache_dir = f.cache_dir;
    auto m = text::TextModel::Load(f.model, {dev->get()}, mo);
    if (!m.ok()) return std::fprintf(stderr, "error: %s\n", m.status().ToString().c_str()), 1;
    if (ids.empty()) {
      auto t = Tokens(**m, f);
      if (!t.ok()) return std::fprintf(stderr, "error: %s\n", t.status().ToString().c_str()), 1;
      ids = std::move(t).value();
    }
    auto lp = Score(**m, ids, f.window);
    if (!lp.ok()) return std::fprintf(stderr, "error: %s\n", lp.status().ToString().c_str()), 1;
    if (kind == QuantKind::kNone) {
      ref = std::move(lp).value();
      continue;
    }
    nlohmann::json j = Compare(ref, *lp, static_cast<size_t>((*m)->vocab_size()));
    j["model"] = f.model;
    j["quantize"] = QuantKindName(kind);
    j["head_quantized"] = f.head;
    j["tokens"] = f.random_ids > 0 ? "random" : f.text;
    j["window"] = f.window;
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  tessera::Flags f;
  if (!tessera::ParseFlags(argc, argv, &f)) {
    std::fprintf(stderr,
                 "usage: quant_accuracy --model DIR --plugin LIB (--text FILE | --random-ids N) "
                 "[--window 128] [--no-head] [--cache-dir DIR] [--threads 2]\n");
    return 2;
  }
  return tessera::Run(f);
}
