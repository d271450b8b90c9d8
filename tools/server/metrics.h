// Server-side Prometheus metrics: request counts by endpoint and status, latency histograms
// (time to first token, inter-token latency, request duration). Scheduler gauges and counters
// (queue, running, KV blocks, prefix hits, tokens) are read from each BatchScheduler when
// /metrics is rendered.
#ifndef TESSERA_TOOLS_SERVER_METRICS_H_
#define TESSERA_TOOLS_SERVER_METRICS_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "tessera/core/batching/batch_scheduler.h"

namespace tessera::server {

// Cumulative histogram with fixed upper bounds (seconds). Thread-safe.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends the _bucket/_sum/_count lines of `name` with `labels` (e.g. model="x").
  void Render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // GUARDED_BY(mu_): one per bound, plus +Inf
  double sum_ = 0;                // GUARDED_BY(mu_)
  uint64_t total_ = 0;            // GUARDED_BY(mu_)
};

// Per-model latency histograms.
struct ModelLatency {
  ModelLatency();
  Histogram ttft;  // submit -> first generated token
  Histogram itl;   // between consecutive tokens of a sequence
  Histogram e2e;   // submit -> last token
};

class Metrics {
 public:
  // Thread-safe.
  void CountRequest(const std::string& endpoint, int status);
  void CountRejected(const std::string& reason);
  // Renders every metric; `models` pairs each model name with its scheduler stats and latency.
  std::string Render(const std::vector<std::pair<std::string, batching::SchedulerStats>>& stats,
                     const std::vector<std::pair<std::string, const ModelLatency*>>& latency) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // GUARDED_BY(mu_)
  std::map<std::string, uint64_t> rejected_;                  // GUARDED_BY(mu_)
};

}  // namespace tessera::server

#endif  // TESSERA_TOOLS_SERVER_METRICS_H_
