// `engine bench MODEL`: prompt-processing and generation speed in the spirit of llama-bench,
// stated against what this machine can do. Between the timed runs it measures the machine's
// read bandwidth (STREAM-style) and the peak rate of the arithmetic instruction the kernels use,
// and reports each test's achieved fraction of them:
//   tg fraction = (weight bytes read per token + KV bytes read per token) * tok/s / bandwidth
// With --parallel N the tg test decodes N sequences in lockstep (one batch of N tokens a step, as
// a server with N streams does), reports their aggregate tokens/s and counts the weights once a
// step: bytes per token = weight bytes / N + KV bytes per token.
//   pp fraction = (2 * matmul params * tokens + attention flops) / seconds / peak flop/s
// With --quantize q8|q4 on a CPU with AVX-512 VNNI the matmuls run vpdpbusd on int8 values, so
// their 2 * params * tokens ops are held against that instruction's peak (int8 ops/s, a
// multiply-add counting 2) and attention against the f32 FMA peak:
//   pp fraction = (matmul ops / vpdpbusd peak + attention flops / f32 fma peak) / seconds
// With --greedy the tg tests run as the server runs greedy requests: each step's tokens are
// picked on the device (ForwardArgmax: TSR_OP_ARGMAX, one id a row downloaded instead of a
// vocab of logits); their names get "-greedy" (tg128-greedy, tg128x64-greedy).
// With -d D (llama-bench's --n-depth) every test runs on top of D tokens already in the cache
// (an untimed prefill of D random tokens a sequence first): "pp512 @ d4096", "tg128 @ d4096",
// so decode and prefill speed can be read at long contexts.
// Token ids are random: speed does not depend on them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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
  int parallel = 1;    // --parallel: sequences decoding at once in the tg test
  int depth = 0;       // -d: tokens already in each sequence's cache before a test
  int reps = 5;
  bool json = false;
  int64_t probe_mib = 512;  // read-bandwidth buffer; must dwarf the last-level cache
  uint64_t seed = 1;
  std::string quantize;  // --quantize: shorthand for the `quantize` setting
  bool greedy = false;   // --greedy: tg steps through ForwardArgmax
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

// Flops of one prefill of `p` tokens after `depth` cached ones (logits for the last row only, as
// the graph computes).
double PrefillFlops(const text::TextModel& m, const ModelCost& c, int p, int depth) {
  const text::DecoderSpec& s = m.spec();
  double flops =
      2.0 * static_cast<double>(c.layer_params) * p + 2.0 * static_cast<double>(c.head_params);
  for (int64_t l = 0; l < s.n_layers; ++l) {
    const int64_t window = s.layers[static_cast<size_t>(l)].sliding_window;
    double keys = 0;  // causal: query i sees depth + i + 1 keys, at most the window
    for (int i = 0; i < p; ++i) {
      const int64_t k = static_cast<int64_t>(depth) + i + 1;
      keys += static_cast<double>(window > 0 ? std::min<int64_t>(k, window) : k);
    }
    flops += 4.0 * static_cast<double>(s.n_heads * s.head_dim) * keys;  // QK^T and PV
  }
  return flops;
}

// One step of one fresh-or-growing sequence, as generate.cc builds it; greedy: only the
// argmax of its row comes back (ForwardArgmax).
Status Step(text::TextModel& m, SequenceBlocks& seq, std::vector<int32_t> tokens, bool greedy) {
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
  if (greedy) return m.ForwardArgmax(b).status();
  // As `engine run` and the server take a step's logits: into the model's own (pinned) buffer.
  return m.ForwardLogits(b).status();
}

// A prompt of `tokens` random ids.
std::vector<int32_t> RandomTokens(const text::TextModel& m, int tokens, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(m.vocab_size() - 1));
  std::vector<int32_t> v(static_cast<size_t>(tokens));
  for (auto& t : v) t = id(rng);
  return v;
}

// `tokens` steps of `n` sequences in lockstep, each from `depth` cached tokens (an untimed
// prefill a sequence): each step is one batch of n single-token decodes (every row's logits
// returned, as a server's decode step; greedy: every row's argmax, as a server's step of greedy
// requests). Seconds taken.
StatusOr<double> RunParallelDecode(text::TextModel& m, int n, int tokens, bool greedy, int depth,
                                   std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(m.vocab_size() - 1));
  std::vector<SequenceBlocks> seqs(static_cast<size_t>(n));
  Status st;
  for (int s = 0; s < n && depth > 0 && st.ok(); ++s)
    st = Step(m, seqs[static_cast<size_t>(s)], RandomTokens(m, depth, rng), /*greedy=*/false);
  // TESSERA_BENCH_STEP_TIMES=1: the host's share of a step on stderr (building the batch vs the
  // whole Forward: uploads, execute, wait, logits download), to find what a step costs outside
  // the kernels.
  static const bool step_times = std::getenv("TESSERA_BENCH_STEP_TIMES") != nullptr;
  double build_s = 0, forward_s = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < tokens && st.ok(); ++i) {
    const auto tb = Clock::now();
    StepBatch b;
    b.cu_q.push_back(0);
    int32_t width = 0;
    for (int s = 0; s < n && st.ok(); ++s) {
      b.tokens.push_back(id(rng));
      b.positions.push_back(seqs[s].num_tokens);
      st = m.kv_cache().Extend(seqs[s], 1, &b.slots);
      b.cu_q.push_back(s + 1);
      b.kv_lens.push_back(seqs[s].num_tokens);
      b.logit_rows.push_back(s);
      width = std::max(width, static_cast<int32_t>(seqs[s].blocks.size()));
    }
    if (!st.ok()) break;
    b.max_blocks = (width + 15) / 16 * 16;
    b.block_table.assign(static_cast<size_t>(n) * b.max_blocks, -1);
    for (int s = 0; s < n; ++s)
      std::copy(seqs[s].blocks.begin(), seqs[s].blocks.end(),
                b.block_table.begin() + static_cast<ptrdiff_t>(s) * b.max_blocks);
    const auto tf = Clock::now();
    // As the server's scheduler runs a step: logits (or ids) into the model's own (pinned) host
    // buffer.
    st = greedy ? m.ForwardArgmax(b).status() : m.ForwardLogits(b).status();
    build_s += std::chrono::duration<double>(tf - tb).count();
    forward_s += std::chrono::duration<double>(Clock::now() - tf).count();
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (step_times && tokens > 0)
    std::fprintf(stderr, "bench steps: %d x %d seqs: batch build %.1f us, forward %.1f us a step\n",
                 tokens, n, 1e6 * build_s / tokens, 1e6 * forward_s / tokens);
  for (SequenceBlocks& q : seqs) m.kv_cache().Free(q);
  TSR_RETURN_IF_ERROR(st);
  return secs;
}

// Runs pp (one forward of p tokens) or tg (n single-token steps) on a sequence holding `depth`
// cached tokens (an untimed prefill first; 0: an empty cache); returns the seconds taken.
StatusOr<double> RunTest(text::TextModel& m, bool prefill, int tokens, bool greedy, int depth,
                         std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(m.vocab_size() - 1));
  SequenceBlocks seq;
  Status st;
  if (depth > 0) st = Step(m, seq, RandomTokens(m, depth, rng), /*greedy=*/false);
  const auto t0 = Clock::now();
  if (st.ok() && prefill) {
    st = Step(m, seq, RandomTokens(m, tokens, rng), /*greedy=*/false);
  } else {
    for (int i = 0; i < tokens && st.ok(); ++i) st = Step(m, seq, {id(rng)}, greedy);
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
  std::string name;  // "pp512", "tg128", "tg128x64" (--parallel 64), "tg128x64-greedy",
                     // "tg128 @ d4096" (-d 4096)
  bool prefill = false;
  bool greedy = false;  // tg through ForwardArgmax (--greedy)
  int tokens = 0;
  int parallel = 1;     // sequences decoding at once (tg); tokens/s counts all of them
  int depth = 0;        // tokens in each sequence's cache before the test (-d)
  double work = 0;      // flops (pp) or bytes per token (tg)
  double int8_ops = 0;  // pp: the part of `work` done by vpdpbusd (int8 matmuls), else 0
  std::vector<double> tps, probe, fraction;
  std::vector<double> probe_int8;  // pp with int8_ops: the vpdpbusd peak next to each run
};

struct BenchContext {
  std::string model_dir, backend;
  int threads = 1;
  ModelCost cost;
  std::string cpu, simd;
  bool bf16_dot = false;
  bool int8_dot = false;  // quantized matmuls run vpdpbusd (--quantize, AVX-512 VNNI)
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
      {"parallel", r.parallel},
      {"n_depth", r.depth},
      {"greedy", r.greedy},
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
    j["peak_flops"] = machine;  // f32 FMA (the attention part when int8_ops is set)
    j["peak_instruction"] = r.int8_ops > 0 ? "vpdpbusd" : "f32 fma";
    if (r.int8_ops > 0) {
      j["int8_ops"] = r.int8_ops;
      j["peak_int8_ops"] = Summarize(r.probe_int8).median;
    }
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
  // The test column fits the longest name (at least 8, as the table always was).
  int w = 8;
  for (const TestResult& r : results) w = std::max(w, static_cast<int>(r.name.size()));
  std::printf(
      "| %-*s |         t/s (mean ± sd) |   median | machine (median)        | fraction |\n", w,
      "test");
  std::printf("| %s | ----------------------- | -------- | ----------------------- | -------- |\n",
              std::string(static_cast<size_t>(w), '-').c_str());
  for (const TestResult& r : results) {
    const Stats tps = Summarize(r.tps), probe = Summarize(r.probe), frac = Summarize(r.fraction);
    char machine[64];
    if (r.probe.empty())
      std::snprintf(machine, sizeof machine, "n/a (not the CPU)      ");
    else if (r.prefill && r.int8_ops > 0)
      std::snprintf(machine, sizeof machine, "%8.1f GOP/s vpdpbusd ",
                    Summarize(r.probe_int8).median / 1e9);
    else if (r.prefill)
      std::snprintf(machine, sizeof machine, "%8.1f GFLOP/s f32 fma", probe.median / 1e9);
    else
      std::snprintf(machine, sizeof machine, "%8.2f GB/s read     ", probe.median / 1e9);
    char fraction[16] = "     n/a";
    if (!r.fraction.empty()) std::snprintf(fraction, sizeof fraction, "%8.3f", frac.median);
    std::printf("| %-*s | %10.2f ± %10.2f | %8.2f | %s | %s |\n", w, r.name.c_str(), tps.mean,
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
  const std::string at = f.depth > 0 ? " @ d" + std::to_string(f.depth) : "";
  if (f.prompt > 0) {
    TestResult pp;
    pp.name = "pp" + std::to_string(f.prompt) + at;
    pp.prefill = true;
    pp.tokens = f.prompt;
    pp.depth = f.depth;
    pp.work = PrefillFlops(m, c.cost, f.prompt, f.depth);
    if (c.int8_dot)
      pp.int8_ops = 2.0 * (static_cast<double>(c.cost.layer_params) * f.prompt +
                           static_cast<double>(c.cost.head_params));
    tests.push_back(std::move(pp));
  }
  if (f.generate > 0) {
    // Mean KV bytes read per step: step i attends over depth + i + 1 keys. With --parallel the
    // weights are read once a step for all sequences.
    const double keys = f.depth + (f.generate + 1) / 2.0;
    TestResult tg;
    tg.name = "tg" + std::to_string(f.generate) +
              (f.parallel > 1 ? "x" + std::to_string(f.parallel) : "") +
              (f.greedy ? "-greedy" : "") + at;
    tg.depth = f.depth;
    tg.greedy = f.greedy;
    tg.tokens = f.generate;
    tg.parallel = f.parallel;
    tg.work = static_cast<double>(c.cost.weight_bytes) / f.parallel +
              keys * static_cast<double>(c.cost.kv_bytes_per_key);
    tests.push_back(std::move(tg));
  }
  // Warm-up: prepares each step's graph and faults the weights in.
  auto run = [&](const TestResult& t, int tokens) {
    return t.parallel > 1 ? RunParallelDecode(m, t.parallel, tokens, t.greedy, t.depth, rng)
                          : RunTest(m, t.prefill, tokens, t.greedy, t.depth, rng);
  };
  for (const TestResult& t : tests) TSR_RETURN_IF_ERROR(run(t, std::min(t.tokens, 16)).status());
  for (const TestResult& t : tests) TSR_RETURN_IF_ERROR(run(t, t.tokens).status());
  for (int r = 0; r < f.reps; ++r) {
    for (TestResult& t : tests) {
      TSR_ASSIGN_OR_RETURN(double s, run(t, t.tokens));
      const double tps = static_cast<double>(t.tokens) * t.parallel / s;
      t.tps.push_back(tps);
      if (!c.host_probes) continue;
      const double probe = t.prefill ? bench::MeasurePeakFmaF32(c.threads) : bw.Measure();
      t.probe.push_back(probe);
      if (t.int8_ops > 0) {
        // The seconds each instruction's work takes at its peak, over the seconds taken.
        const double int8_peak = bench::MeasurePeakVnniInt8(c.threads);
        t.probe_int8.push_back(int8_peak);
        t.fraction.push_back(((t.work - t.int8_ops) / probe + t.int8_ops / int8_peak) / s);
        continue;
      }
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
  // One pp sequence, or --parallel tg sequences of a block-rounded depth + n tokens each.
  opt.kv_tokens =
      std::max<int64_t>(static_cast<int64_t>(f.depth) + f.prompt + 16,
                        static_cast<int64_t>(f.parallel) *
                            ((static_cast<int64_t>(f.depth) + f.generate + 16) / 16 * 16 + 16));
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
  c.int8_dot = *quant != QuantKind::kNone && c.host_probes && bench::HasAvx512Vnni();
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
  cmd->add_option("-d,--n-depth", f->depth,
                  "Tokens already in each sequence's cache before a test (untimed prefill)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--parallel", f->parallel,
                  "Sequences decoding at once in the tg test (aggregate tokens/s)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("-r,--repetitions", f->reps, "Timed repetitions of each test")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--probe-mib", f->probe_mib,
                  "Read-bandwidth probe buffer in MiB (>> last-level cache)")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--seed", f->seed, "Seed of the random token ids");
  cmd->add_option("--quantize", f->quantize,
                  "Quantize weights at load: none, q8, q4 (setting quantize; cached)");
  cmd->add_flag("--greedy", f->greedy,
                "tg tests pick each token on the device (ForwardArgmax), as the server does for "
                "greedy requests; their names get -greedy");
  cmd->add_flag("--json", f->json, "One JSON object per test (JSON Lines) instead of a table");
  return [=]() { return cmd->parsed() ? RunBench(g, *f) : -1; };
}

}  // namespace tessera::cli
