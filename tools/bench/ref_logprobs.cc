// ref_logprobs: a model's teacher-forced log-probabilities on one backend, for comparison with
// transformers on checkpoints too large for the golden fixtures (bench/ref_check.py).
//
//   ref_logprobs --model DIR --backend cuda --plugin LIB [--plugin LIB]... --ids IDS.json
//                --out OUT.f32 [--prefix P] [--step S] [--keep-last K] [--quantize q8|q4]
//
// IDS.json is a JSON array of token ids. tokens[0, P) go through the model in one forward, then
// tokens[P, n) S at a time (S = 1: one decode step a token; 0: all at once), as generation runs
// them (text::ScoreTokens with ScoreSteps). OUT.f32 gets the log-softmax rows of positions
// P..n-1 (only the last K with --keep-last K) as little-endian float32 [rows, vocab]; stdout one
// JSON line (positions, vocab, seconds). The requested backend's first device runs the model, the
// CPU plugin (when loaded) its fallback; --quantize quantizes the weights at load as
// `engine --quantize` does (into the engine's cache folder).
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tessera/core/device.h"
#include "tessera/core/model/quantize.h"
#include "tessera/core/plugin_loader.h"
#include "tessera/text/generate.h"
#include "tessera/text/text_model.h"

namespace tessera {
namespace {

struct Flags {
  std::string model, backend, ids, out, quantize = "none";
  std::vector<std::string> plugins;
  int64_t prefix = 0, step = 0, keep_last = 0;
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return false;
    const std::string v = argv[++i];
    if (a == "--model")
      f->model = v;
    else if (a == "--backend")
      f->backend = v;
    else if (a == "--plugin")
      f->plugins.push_back(v);
    else if (a == "--ids")
      f->ids = v;
    else if (a == "--out")
      f->out = v;
    else if (a == "--prefix")
      f->prefix = std::stoll(v);
    else if (a == "--step")
      f->step = std::stoll(v);
    else if (a == "--keep-last")
      f->keep_last = std::stoll(v);
    else if (a == "--quantize")
      f->quantize = v;
    else
      return false;
  }
  return !f->model.empty() && !f->backend.empty() && !f->plugins.empty() && !f->ids.empty() &&
         !f->out.empty() && f->prefix >= 0 && f->step >= 0 && f->keep_last >= 0;
}

int Error(const std::string& what) {
  std::fprintf(stderr, "error: %s\n", what.c_str());
  return 1;
}

int Run(const Flags& f) {
  std::ifstream in(f.ids);
  if (!in) return Error("cannot read '" + f.ids + "'");
  std::vector<int32_t> ids;
  try {
    ids = nlohmann::json::parse(in).get<std::vector<int32_t>>();
  } catch (const std::exception& e) {
    return Error(f.ids + ": expected a JSON array of token ids (" + e.what() + ")");
  }
  LoaderOptions o;
  o.explicit_paths = f.plugins;
  auto registry = PluginRegistry::Discover(o);
  Plugin* main = registry->Find(f.backend);
  if (main == nullptr || main->device_count() == 0)
    return Error("backend '" + f.backend + "' has no usable device" +
                 (main ? ": " + main->absence_reason() : ""));
  std::vector<Plugin*> order = {main};
  if (Plugin* cpu = registry->Find("cpu"); cpu && cpu != main && cpu->device_count() > 0)
    order.push_back(cpu);
  std::vector<std::unique_ptr<Device>> owned;
  std::vector<Device*> devices;
  for (Plugin* p : order) {
    auto d = Device::Open(p, 0);
    if (!d.ok()) return Error(d.status().ToString());
    devices.push_back(d->get());
    owned.push_back(std::move(d).value());
  }
  auto quant = ParseQuantKind(f.quantize);
  if (!quant.ok()) return Error(quant.status().ToString());
  text::TextModelOptions mo;
  mo.kv_tokens = static_cast<int64_t>(ids.size()) + 16;
  mo.quantize = *quant;
  auto m = text::TextModel::Load(f.model, devices, mo);
  if (!m.ok()) return Error(m.status().ToString());
  const auto t0 = std::chrono::steady_clock::now();
  auto lp =
      text::ScoreTokens(**m, ids, {static_cast<size_t>(f.prefix), static_cast<size_t>(f.step)});
  if (!lp.ok()) return Error(lp.status().ToString());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t vocab = (*m)->vocab_size();
  int64_t rows = static_cast<int64_t>(lp->size()) / vocab;
  const int64_t first = f.keep_last > 0 && f.keep_last < rows ? rows - f.keep_last : 0;
  rows -= first;
  std::ofstream out(f.out, std::ios::binary);
  out.write(reinterpret_cast<const char*>(lp->data() + first * vocab),
            static_cast<std::streamsize>(rows * vocab * sizeof(float)));
  if (!out) return Error("cannot write '" + f.out + "'");
  nlohmann::json j = {{"model", f.model}, {"backend", f.backend},   {"prefix", f.prefix},
                      {"step", f.step},   {"quantize", f.quantize}, {"positions", rows},
                      {"vocab", vocab},   {"seconds", secs}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  tessera::Flags f;
  bool parsed = false;
  try {
    parsed = tessera::ParseFlags(argc, argv, &f);
  } catch (const std::exception&) {  // std::stoll on a number that is not one
  }
  if (!parsed) {
    std::fprintf(stderr,
                 "usage: ref_logprobs --model DIR --backend ID --plugin LIB [--plugin LIB]... "
                 "--ids IDS.json --out OUT.f32 [--prefix P] [--step S] [--keep-last K] "
                 "[--quantize q8|q4]\n");
    return 2;
  }
  return tessera::Run(f);
}
