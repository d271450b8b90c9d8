// Sampler throughput on a vocab-sized row. One JSON object per configuration on stdout:
//   {"config":"greedy","vocab":151936,"us_per_token":...,"cpu_us_per_token":...}
// cpu_us_per_token (thread CPU time) is the number to compare on a shared, loaded machine.
// Usage: tessera_sampler_bench [vocab] [iterations]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <vector>

#include "tessera/text/sampler.h"

namespace {

using tessera::text::Sampler;
using tessera::text::SamplingParams;

double ThreadCpuMicros() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

struct Config {
  const char* name;
  SamplingParams params;
};

std::vector<Config> Configs() {
  std::vector<Config> configs;
  SamplingParams p;
  p.seed = 1;
  p.temperature = 0.0f;
  configs.push_back({"greedy", p});
  p.temperature = 0.7f;
  configs.push_back({"temperature", p});
  p.top_k = 50;
  configs.push_back({"top_k50", p});
  p.top_k = 0;
  p.top_p = 0.9f;
  configs.push_back({"top_p0.9", p});
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  p.repetition_penalty = 1.1f;
  p.presence_penalty = 0.5f;
  p.top_logprobs = 5;
  configs.push_back({"all", p});
  return configs;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t vocab = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 151936;
  const int iters = argc > 2 ? std::atoi(argv[2]) : 200;
  // Logits shaped like an LM's: a few strong candidates over a long Gaussian tail.
  std::mt19937_64 gen(42);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(vocab);
  for (float& x : logits) x = normal(gen);
  for (int i = 0; i < 5; ++i) logits[gen() % vocab] += 12.0f;

  std::vector<int32_t> prompt(512);
  for (int32_t& id : prompt) id = static_cast<int32_t>(gen() % vocab);
  for (const Config& c : Configs()) {
    Sampler sampler(c.params, prompt);
    int64_t checksum = 0;
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = ThreadCpuMicros();
    for (int i = 0; i < iters; ++i) {
      const int32_t id = sampler.Sample(logits).id;
      sampler.Accept(id);
      checksum += id;
    }
    const double cpu = ThreadCpuMicros() - cpu_start;
    const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    std::printf(
        "{\"config\":\"%s\",\"vocab\":%zu,\"us_per_token\":%.1f,\"cpu_us_per_token\":%.1f,"
        "\"checksum\":%lld}\n",
        c.name, vocab, took.count() / iters, cpu / iters, static_cast<long long>(checksum));
  }
  return 0;
}
