// `engine bench MODEL`: prompt-processing and generation speed in the spirit of llama-bench,
// stated against what this machine can do. Between the timed runs it measures the machine's
// read bandwidth (STREAM-style) and the peak rate of the arithmetic instruction the kernels use,
// and reports each test's achieved fraction of them:
//   tg fraction = (weight bytes read per token + KV bytes read per token) * tok/s / bandwidth
//   pp fraction = (2 * matmul params * tokens + attention flops) / seconds / peak flop/s
// Token ids are random: speed does not depend on them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "commands.h"
#include "quantize_flag.h"
#include "tessera/bench/probes.h"
#include "tessera/text/text_model.h"

namespace tessera::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchFlags {
  std::string model;
  int prompt = 512;    // -p: tokens of the pp test (0 = skip)
  int generate = 128;  // -n: tokens of the tg test (0 = skip)
  int reps = 5;
  bool json = false;
  int64_t probe_mib = 512;  // read-bandwidth buffer; must dwarf the last-level cache
  uint64_t seed = 1;
  std::string quantize;  // --quantize: shorthand for the `quantize` setting
};

// What one token costs the model, from the checkpoint and the decoder spec.
struct ModelCost {
  int64_t layer_params = 0;      // matmul weights inside the layers
  int64_t head_params = 0;       // LM head (the embedding when tied)
  int64_t weight_bytes = 0;      // matmul weight bytes read by one decode step
  int64_t kv_bytes_per_key = 0;  // K and V bytes read per cached token, all layers
  int64_t total_params = 0;      // every tensor, for display
};

ModelCost CostOf(const text::TextModel& m, const Checkpoint& ckpt) {
  const text::DecoderSpec& s = m.spec();
  ModelCost c;
  auto same = [](const std::string& a, const std::string& b) {
    auto strip = [](const std::string& n) { return n.rfind("model.", 0) == 0 ? n.substr(6) : n; };
    return strip(a) == strip(b);
  };
  for (const std::string& name : ckpt.TensorNames()) {
    const TensorInfo* t = ckpt.Find(name);
    c.total_params += t->numel();
    if (t->shape.size() < 2) continue;
    const bool embed = same(name, s.w_embed);
    const bool head = s.tie_embeddings ? embed : same(name, s.w_lm_head);
    const auto bytes = static_cast<int64_t>(m.WeightBytes(name));  // quantized size if so
    if (head) {
      c.head_params += t->numel();
      c.weight_bytes += bytes;
    } else if (!embed) {
      c.layer_params += t->numel();
      c.weight_bytes += bytes;
    }
  }
  // KV pools are f32 (kv_cache.h).
  c.kv_bytes_per_key = s.n_layers * 2 * s.n_kv_heads * s.head_dim * 4;
  return c;
}

// Flops of one prefill of `p` tokens (logits for the last row only, as the graph computes).
double PrefillFlops(const text::TextModel& m, const ModelCost& c, int p) {
  const text::DecoderSpec& s = m.spec();
  double flops =
      2.0 * static_cast<double>(c.layer_params) * p + 2.0 * static_cast<double>(c.head_params);
  for (int64_t l = 0; l < s.n_layers; ++l) {
    const int64_t window = s.layers[static_cast<size_t>(l)].sliding_window;
    double keys = 0;  // causal: query i sees i + 1 keys, at most the window
    for (int i = 0; i < p; ++i) keys += window > 0 ? std::min<int64_t>(i + 1, window) : i + 1;
    flops += 4.0 * static_cast<double>(s.n_heads * s.head_dim) * keys;  // QK^T and PV
  }
  return flops;
}

// One step of one fresh-or-growing sequence, as generate.cc builds it.
Status Step(text::TextModel& m, SequenceBlocks& seq, std::vector<int32_t> tokens,
            std::vector<float>* logits) {
  StepBatch b;
  b.tokens = std::move(tokens);
  const int32_t n = static_cast<int32_t>(b.tokens.size());
  for (int32_t i = 0; i < n; ++i) b.positions.push_back(seq.num_tokens + i);
  TSR_RETURN_IF_ERROR(m.kv_cache().Extend(seq, n, &b.slots));
  b.cu_q = {0, n};
  b.kv_lens = {seq.num_tokens};
  b.max_blocks = (static_cast<int32_t>(seq.blocks.size()) + 15) / 16 * 16;
  b.block_table.assign(static_cast<size_t>(b.max_blocks), -1);
  std::copy(seq.blocks.begin(), seq.blocks.end(), b.block_table.begin());
  b.logit_rows = {n - 1};
  return m.Forward(b, logits);
}

// Runs pp (one forward of p tokens) or tg (n single-token steps from an empty cache); returns
// the seconds taken.
StatusOr<double> RunTest(text::TextModel& m, bool prefill, int tokens, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(m.vocab_size() - 1));
  SequenceBlocks seq;
  std::vector<float> logits;
  Status st;
  const auto t0 = Clock::now();
  if (prefill) {
    std::vector<int32_t> prompt(static_cast<size_t>(tokens));
    for (auto& t : prompt) t = id(rng);
    st = Step(m, seq, std::move(prompt), &logits);
  } else {
    for (int i = 0; i < tokens && st.ok(); ++i) st = Step(m, seq, {id(rng)}, &logits);
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  m.kv_cache().Free(seq);
  TSR_RETURN_IF_ERROR(st);
  return s;
}

struct Stats {
  double mean = 0, stddev = 0, median = 0, min = 0, max = 0;
};

Stats Summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = v.size() > 1 ? std::sqrt(s.stddev / static_cast<double>(v.size() - 1)) : 0;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  s.median = v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
  s.min = v.front();
  s.max = v.back();
  return s;
}

// One test's samples: tokens/s, the probe measured next to each run, and the fraction.
struct TestResult {
  std::string name;  // "pp512", "tg128"
  bool prefill = false;
  int tokens = 0;
  double work = 0;  // flops (pp) or bytes per token (tg)
  std::vector<double> tps, probe, fraction;
};

struct BenchContext {
  std::string model_dir, backend;
  int threads = 1;
  ModelCost cost;
  std::string cpu, simd;
  bool bf16_dot = false;
  // The probes measure the host CPU: they are the machine's limits only when the first device is
  // the CPU. On a GPU the fractions are left out (null) rather than compared with the host.
  bool host_probes = true;
};

nlohmann::json ResultJson(const BenchContext& c, const TestResult& r) {
  const Stats tps = Summarize(r.tps), probe = Summarize(r.probe), frac = Summarize(r.fraction);
  nlohmann::json j = {
      {"test", r.name},
      {"model", c.model_dir},
      {"model_params", c.cost.total_params},
      {"weight_bytes_per_token", c.cost.weight_bytes},
      {"backend", c.backend},
      {"threads", c.threads},
      {"cpu", c.cpu},
      {"simd_target", c.simd},
      {"n_prompt", r.prefill ? r.tokens : 0},
      {"n_gen", r.prefill ? 0 : r.tokens},
      {"reps", r.tps.size()},
      {"tokens_per_s", tps.mean},
      {"stddev", tps.stddev},
      {"median", tps.median},
      {"min", tps.min},
      {"max", tps.max},
      {"samples", r.tps},
      {"fraction", r.fraction.empty() ? nlohmann::json() : nlohmann::json(frac.median)}};
  const nlohmann::json machine = r.probe.empty() ? nlohmann::json() : nlohmann::json(probe.median);
  if (r.prefill) {
    j["flops"] = r.work;
    j["peak_flops"] = machine;
    j["peak_instruction"] = "f32 fma";
  } else {
    j["bytes_per_token"] = r.work;
    j["bandwidth_bytes_per_s"] = machine;
  }
  return j;
}

void PrintText(const BenchContext& c, const std::vector<TestResult>& results) {
  std::printf("cpu: %s, simd: %s, threads: %d, backend: %s, avx512_bf16: %s\n", c.cpu.c_str(),
              c.simd.c_str(), c.threads, c.backend.c_str(), c.bf16_dot ? "yes" : "no");
  std::printf("model: %s (%.1fM params, %.1f MiB matmul weights per token)\n\n",
              c.model_dir.c_str(), c.cost.total_params / 1e6, c.cost.weight_bytes / 1048576.0);
  std::printf(
      "| test   |         t/s (mean ± sd) |   median | machine (median)        | fraction |\n");
  std::printf(
      "| ------ | ----------------------- | -------- | ----------------------- | -------- |\n");
  for (const TestResult& r : results) {
    const Stats tps = Summarize(r.tps), probe = Summarize(r.probe), frac = Summarize(r.fraction);
    char machine[64];
    if (r.probe.empty())
      std::snprintf(machine, sizeof machine, "n/a (not the CPU)      ");
    else if (r.prefill)
      std::snprintf(machine, sizeof machine, "%8.1f GFLOP/s f32 fma", probe.median / 1e9);
    else
      std::snprintf(machine, sizeof machine, "%8.2f GB/s read     ", probe.median / 1e9);
    char fraction[16] = "     n/a";
    if (!r.fraction.empty()) std::snprintf(fraction, sizeof fraction, "%8.3f", frac.median);
    std::printf("| %-6s | %10.2f ± %10.2f | %8.2f | %s | %s |\n", r.name.c_str(), tps.mean,
                tps.stddev, tps.median, machine, fraction);
  }
}

// Warm-up, then reps x (pp, peak probe, tg, bandwidth probe), so machine numbers are measured
// under the same load the runs see.
Status Measure(text::TextModel& m, const BenchFlags& f, const BenchContext& c,
               std::vector<TestResult>* out) {
  std::mt19937_64 rng(f.seed);
  bench::ReadBandwidthProbe bw(static_cast<size_t>(f.probe_mib) << 20, c.threads);
  std::vector<TestResult> tests;
  if (f.prompt > 0)
    tests.push_back({"pp" + std::to_string(f.prompt),
                     true,
                     f.prompt,
                     PrefillFlops(m, c.cost, f.prompt),
                     {},
                     {},
                     {}});
  if (f.generate > 0) {
    // Mean KV bytes read per step: step i attends over i + 1 keys.
    const double keys = (f.generate + 1) / 2.0;
    tests.push_back({"tg" + std::to_string(f.generate),
                     false,
                     f.generate,
                     static_cast<double>(c.cost.weight_bytes) +
                         keys * static_cast<double>(c.cost.kv_bytes_per_key),
                     {},
                     {},
                     {}});
  }
  // Warm-up: prepares each step's graph and faults the weights in.
  for (const TestResult& t : tests)
    TSR_RETURN_IF_ERROR(RunTest(m, t.prefill, std::min(t.tokens, 16), rng).status());
  for (const TestResult& t : tests)
    TSR_RETURN_IF_ERROR(RunTest(m, t.prefill, t.tokens, rng).status());
  for (int r = 0; r < f.reps; ++r) {
    for (TestResult& t : tests) {
      TSR_ASSIGN_OR_RETURN(double s, RunTest(m, t.prefill, t.tokens, rng));
      const double tps = t.tokens / s;
      t.tps.push_back(tps);
      if (!c.host_probes) continue;
      const double probe = t.prefill ? bench::MeasurePeakFmaF32(c.threads) : bw.Measure();
      t.probe.push_back(probe);
      t.fraction.push_back(t.prefill ? t.work / s / probe : t.work * tps / probe);
    }
  }
  *out = std::move(tests);
  return OkStatus();
}

int RunBench(GlobalFlags* g, const BenchFlags& f) {
  auto settings = ResolveSettings(*g);
  if (!settings.ok()) return Fail(settings.status());
  // A folder, an alias or ORG/NAME[@REV], pulled first when missing (docs/models.md).
  auto model_dir = ResolveModelDir(f.model, /*pull_if_missing=*/true);
  if (!model_dir.ok()) return Fail(model_dir.status());
  auto quant = QuantizeSetting(&*settings, f.quantize);
  if (!quant.ok()) return Fail(quant.status());
  auto reg = LoadPlugins(*settings, WithInt8Dot(*g, *quant));
  auto devs = OpenDevices(*reg, settings->GetString("backend"));
  if (!devs.ok()) return Fail(devs.status());
  text::TextModelOptions opt;
  opt.kv_tokens = std::max(f.prompt, f.generate) + 16;  // one sequence at a time
  opt.quantize = *quant;
  auto model = text::TextModel::Load(*model_dir, devs->ordered, opt);
  if (!model.ok()) return Fail(model.status());
  auto ckpt = Checkpoint::Open(*model_dir);
  if (!ckpt.ok()) return Fail(ckpt.status());
  BenchContext c;
  c.model_dir = *model_dir;
  c.backend = devs->ordered.front()->label();
  c.host_probes = devs->ordered.front()->props().kind == TSR_DEVICE_CPU;
  if (!c.host_probes)
    std::fprintf(stderr,
                 "note: %s is not the CPU; the host's bandwidth/FMA probes do not describe it, so "
                 "no fractions are reported\n",
                 c.backend.c_str());
  const int64_t t = settings->GetInt("threads");
  c.threads = t > 0 ? static_cast<int>(t)
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  c.cost = CostOf(**model, **ckpt);
  c.cpu = bench::CpuModelName();
  c.simd = bench::SimdTargetName();
  c.bf16_dot = bench::HasAvx512Bf16();
  std::vector<TestResult> results;
  if (Status st = Measure(**model, f, c, &results); !st.ok()) return Fail(st);
  if (f.json) {
    for (const TestResult& r : results) std::printf("%s\n", ResultJson(c, r).dump().c_str());
  } else {
    PrintText(c, results);
  }
  return 0;
}

}  // namespace

Handler AddBenchCommand(CLI::App& app, GlobalFlags* g) {
  auto* cmd =
      app.add_subcommand("bench", "Measure prompt processing (pp) and generation (tg) speed");
  auto f = std::make_shared<BenchFlags>();
  cmd->add_option("model", f->model, "Model folder, alias or ORG/NAME[@REV]")->required();
  cmd->add_option("-p,--n-prompt", f->prompt, "Prompt tokens of the pp test (0 = skip)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("-n,--n-gen", f->generate, "Tokens of the tg test (0 = skip)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("-r,--repetitions", f->reps, "Timed repetitions of each test")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--probe-mib", f->probe_mib,
                  "Read-bandwidth probe buffer in MiB (>> last-level cache)")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--seed", f->seed, "Seed of the random token ids");
  cmd->add_option("--quantize", f->quantize,
                  "Quantize weights at load: none, q8, q4 (setting quantize; cached)");
  cmd->add_flag("--json", f->json, "One JSON object per test (JSON Lines) instead of a table");
  return [=]() { return cmd->parsed() ? RunBench(g, *f) : -1; };
}

}  // namespace tessera::cli
