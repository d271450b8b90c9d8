#include "metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace tessera::server {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                       bounds_.begin());
  std::lock_guard<std::mutex> l(mu_);
  ++counts_[i];
  sum_ += value;
  ++total_;
}

void Histogram::Render(const std::string& name, const std::string& labels, std::string* out) const {
  std::lock_guard<std::mutex> l(mu_);
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    *out +=
        fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds_[i], cumulative);
  }
  cumulative += counts_.back();
  *out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, cumulative);
  *out += fmt::format("{}_sum{{{}}} {}\n", name, labels, sum_);
  *out += fmt::format("{}_count{{{}}} {}\n", name, labels, total_);
}

namespace {
std::vector<double> LatencyBounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}
}  // namespace

ModelLatency::ModelLatency() : ttft(LatencyBounds()), itl(LatencyBounds()), e2e(LatencyBounds()) {}

void Metrics::CountRequest(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> l(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::CountRejected(const std::string& reason) {
  std::lock_guard<std::mutex> l(mu_);
  ++rejected_[reason];
}

std::string Metrics::Render(
    const std::vector<std::pair<std::string, batching::SchedulerStats>>& stats,
    const std::vector<std::pair<std::string, const ModelLatency*>>& latency) const {
  std::string out;
  auto header = [&out](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  {
    std::lock_guard<std::mutex> l(mu_);
    header("tessera_http_requests_total", "counter", "HTTP requests by endpoint and status code");
    for (const auto& [key, n] : requests_)
      out += fmt::format("tessera_http_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n",
                         key.first, key.second, n);
    header("tessera_requests_rejected_total", "counter",
           "Generation requests refused before queueing, by reason");
    for (const auto& [reason, n] : rejected_)
      out += fmt::format("tessera_requests_rejected_total{{reason=\"{}\"}} {}\n", reason, n);
  }
  struct Field {
    const char* name;
    const char* type;
    const char* help;
    int64_t batching::SchedulerStats::*member;
  };
  static const Field kFields[] = {
      {"tessera_queue_depth", "gauge", "Sequences waiting for admission",
       &batching::SchedulerStats::waiting},
      {"tessera_running_sequences", "gauge", "Sequences in the running batch",
       &batching::SchedulerStats::running},
      {"tessera_preempted_sequences", "gauge", "Preempted sequences waiting to be recomputed",
       &batching::SchedulerStats::preempted_waiting},
      {"tessera_max_running_sequences", "gauge", "Running-sequence limit",
       &batching::SchedulerStats::max_running},
      {"tessera_kv_blocks_total", "gauge", "KV cache blocks",
       &batching::SchedulerStats::kv_blocks_total},
      {"tessera_kv_blocks_used", "gauge", "KV blocks held by sequences",
       &batching::SchedulerStats::kv_blocks_used},
      {"tessera_kv_blocks_cached", "gauge",
       "KV blocks held only by the prefix cache (reusable, evictable)",
       &batching::SchedulerStats::kv_blocks_cached},
      {"tessera_kv_blocks_free", "gauge", "Free KV blocks",
       &batching::SchedulerStats::kv_blocks_free},
      {"tessera_kv_block_size", "gauge", "Tokens per KV block",
       &batching::SchedulerStats::kv_block_size},
      {"tessera_steps_total", "counter", "Forward steps run", &batching::SchedulerStats::steps},
      {"tessera_argmax_steps_total", "counter",
       "Forward steps whose tokens were picked on the device (all greedy: one id a row downloaded)",
       &batching::SchedulerStats::argmax_steps},
      {"tessera_step_tokens_total", "counter", "Tokens run through forward steps",
       &batching::SchedulerStats::step_tokens},
      {"tessera_prompt_tokens_total", "counter", "Prompt tokens submitted",
       &batching::SchedulerStats::prompt_tokens},
      {"tessera_prompt_tokens_computed_total", "counter",
       "Prompt tokens computed (recomputation after preemption included)",
       &batching::SchedulerStats::prompt_tokens_computed},
      {"tessera_prefix_cache_hit_tokens_total", "counter",
       "Prompt tokens whose KV came from the prefix cache",
       &batching::SchedulerStats::prefix_hit_tokens},
      {"tessera_prefill_chunks_total", "counter",
       "Prefill chunks scheduled (a chunked prompt counts each chunk)",
       &batching::SchedulerStats::prefill_chunks},
      {"tessera_generated_tokens_total", "counter", "Tokens generated",
       &batching::SchedulerStats::generated_tokens},
      {"tessera_preemptions_total", "counter", "Sequences preempted for lack of KV blocks",
       &batching::SchedulerStats::preemptions},
      {"tessera_sequences_finished_total", "counter", "Sequences that finished normally",
       &batching::SchedulerStats::finished},
      {"tessera_sequences_cancelled_total", "counter", "Sequences cancelled (client gone)",
       &batching::SchedulerStats::cancelled},
      {"tessera_sequences_failed_total", "counter", "Sequences ended by an error",
       &batching::SchedulerStats::errors},
  };
  for (const Field& f : kFields) {
    header(f.name, f.type, f.help);
    for (const auto& [model, s] : stats)
      out += fmt::format("{}{{model=\"{}\"}} {}\n", f.name, model, s.*f.member);
  }
  struct Hist {
    const char* name;
    const char* help;
    const Histogram ModelLatency::*member;
  };
  static const Hist kHists[] = {
      {"tessera_time_to_first_token_seconds", "Time from request arrival to its first token",
       &ModelLatency::ttft},
      {"tessera_inter_token_latency_seconds", "Time between consecutive tokens of a sequence",
       &ModelLatency::itl},
      {"tessera_request_duration_seconds", "Time from request arrival to its last token",
       &ModelLatency::e2e},
  };
  for (const Hist& h : kHists) {
    header(h.name, "histogram", h.help);
    for (const auto& [model, lat] : latency)
      (lat->*h.member).Render(h.name, "model=\"" + model + "\"", &out);
  }
  return out;
}

}  // namespace tessera::server
