// Sampler: logit processors and the draw. See sampler.h for the pipeline order and tie rules.
//
// Cost per Sample() over a vocabulary of V tokens; no full sort anywhere, and every O(V) pass is
// a SIMD kernel (sampler_kernels.h) over L1-sized blocks:
//   greedy:           one pass: argmax of the penalized logits fused with the raw log-sum-exp;
//   sampling:         log-sum-exp (1 pass), processed row (copy + divide/max), weights with
//                     per-block sums (1), then the draw reads one block;
//   + top-k:          a few counting passes pick a cut-off that leaves >= k candidates, then
//                     nth_element over the candidates only;
//   + top-p:          weights (1), a few mass passes pick a cut-off whose candidates hold >= p of
//                     the mass, then nth_element + sort on growing prefixes of the candidates;
//   + top_logprobs N: one pass with an N-entry heap.
// Penalties touch only the tokens seen so far (kept sorted, sparse).
#include "tessera/text/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>

#include "modalities/text/sampling/src/sampler_kernels.h"

namespace tessera::text {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::string OutOfRange(const char* field, double value, const char* range) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "sampling params: %s = %g is out of range; it must be %s", field,
                value, range);
  return buf;
}

// 4096 floats = 16 KiB: a block stays in L1 between the kernels that read it back to back.
constexpr size_t kBlock = 4096;

// Log-sum-exp accumulated block by block, so a row is read from memory once. The running sum is
// rescaled when a block raises the maximum (O(log blocks) times for a row in random order).
struct OnlineLogSumExp {
  float max = kNegInf;
  double sum = 0.0;
  void AddBlock(const float* x, size_t n, float block_max) {
    if (block_max == kNegInf) return;  // contributes nothing (and exp(-inf - -inf) is NaN)
    if (block_max > max) {
      sum *= std::exp(static_cast<double>(max) - block_max);
      max = block_max;
    }
    sum += kernels::SumExpShifted(x, n, max);
  }
  double Value() const { return max == kNegInf ? -HUGE_VAL : max + std::log(sum); }
};

// Vocab-sized rows reused by every Sampler on this thread (see sampler.h for why not per
// sequence). Sized on first use; a larger vocabulary grows them once.
struct Workspace {
  std::vector<float> work;         // (V,) processed logits, then draw weights
  std::vector<float> weights;      // (V,) exp(processed - max) of the top-k set, for top-p
  std::vector<float> scratch;      // (V,) candidates for nth_element
  std::vector<double> block_sums;  // (ceil(V / kBlock),) draw weight per block
};
Workspace& ThreadWorkspace() {
  thread_local Workspace ws;
  return ws;
}

// Smallest cut-off of the form s_max - delta (delta = 4, 8, ..., 64) for which `enough(cut)`
// holds, or -inf. Used to shrink the candidate set of top-k / top-p from V to what can matter
// with a few vectorized passes; e^-64 is far below float resolution of any mass that matters.
template <class Pred>
float FindCutoff(float s_max, const Pred& enough) {
  for (float delta = 4.0f; delta <= 64.0f; delta *= 2.0f) {
    if (enough(s_max - delta)) return s_max - delta;
  }
  return kNegInf;
}

// The k-th largest processed logit. REQUIRES: 0 < k < row.size().
float TopKThreshold(std::span<const float> row, size_t k, float s_max, Workspace& ws) {
  const float cut = FindCutoff(
      s_max, [&](float c) { return kernels::CountAtLeast(row.data(), row.size(), c) >= k; });
  ws.scratch.resize(row.size());
  const size_t m = kernels::CopyAtLeast(row.data(), row.size(), cut, ws.scratch.data());
  auto begin = ws.scratch.begin();
  std::nth_element(begin, begin + (k - 1), begin + m, std::greater<>());
  return ws.scratch[k - 1];
}

// Top-p over the tokens that survived top-k (row >= top_k_threshold): the logit of the last token
// of the shortest descending prefix whose mass reaches top_p. Candidates are pre-filtered to a
// cut-off whose set already holds that mass (the nucleus cannot reach below it), then sorted in
// growing prefixes (64, 256, 1024, ...) until the nucleus ends.
float TopPThreshold(std::span<const float> row, float top_p, float top_k_threshold, float s_max,
                    Workspace& ws) {
  const size_t n = row.size();
  ws.weights.resize(n);
  const double z = kernels::ExpAbove(row.data(), ws.weights.data(), n, s_max, top_k_threshold);
  const double target = static_cast<double>(top_p) * z;
  const float cut = std::max(top_k_threshold, FindCutoff(s_max, [&](float c) {
                               return kernels::MassAtLeast(row.data(), ws.weights.data(), n,
                                                           std::max(c, top_k_threshold)) >= target;
                             }));
  ws.scratch.resize(n);
  const size_t m = kernels::CopyAtLeast(row.data(), n, cut, ws.scratch.data());
  auto begin = ws.scratch.begin();
  double before = 0.0;  // mass of the tokens ahead of position j
  size_t sorted = 0;
  size_t end = std::min<size_t>(m, 64);
  for (;;) {
    if (end < m) std::nth_element(begin + sorted, begin + end, begin + m, std::greater<>());
    std::sort(begin + sorted, begin + end, std::greater<>());
    for (size_t j = sorted; j < end; ++j) {
      // j == 0 never stops (before == 0 < target), so at least one token survives.
      if (before >= target) return ws.scratch[j - 1];
      before += std::exp(ws.scratch[j] - s_max);
    }
    if (end == m) return ws.scratch[m - 1];
    sorted = end;
    end = std::min(m, end * 4);
  }
}

// Orders (logit, id) pairs best first: higher logit, then lower id.
struct Better {
  bool operator()(const std::pair<int32_t, float>& a, const std::pair<int32_t, float>& b) const {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  }
};

// The n best raw logits as (id, logprob), best first. One pass with an n-entry heap whose front is
// the worst kept entry; once the heap is full, a block whose max cannot beat that entry is
// skipped after one SIMD max, so a row in random order costs little more than a max pass.
std::vector<std::pair<int32_t, float>> TopLogprobs(std::span<const float> logits, size_t n,
                                                   double log_z) {
  std::vector<std::pair<int32_t, float>> heap;
  n = std::min(n, logits.size());
  heap.reserve(n);
  Better better;
  for (size_t b = 0; b < logits.size(); b += kBlock) {
    const size_t e = std::min(logits.size(), b + kBlock);
    if (heap.size() == n && kernels::RowMax(logits.data() + b, e - b) < heap.front().second) {
      continue;
    }
    for (size_t i = b; i < e; ++i) {
      std::pair<int32_t, float> entry(static_cast<int32_t>(i), logits[i]);
      if (std::isnan(entry.second)) continue;
      if (heap.size() < n) {
        heap.push_back(entry);
        std::push_heap(heap.begin(), heap.end(), better);
      } else if (better(entry, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), better);
        heap.back() = entry;
        std::push_heap(heap.begin(), heap.end(), better);
      }
    }
  }
  std::sort(heap.begin(), heap.end(), better);
  for (auto& entry : heap) entry.second = static_cast<float>(entry.second - log_z);
  return heap;
}

}  // namespace

Status ValidateSamplingParams(const SamplingParams& p) {
  // Written as !(in range) so NaN fails every check.
  if (!(std::isfinite(p.temperature) && p.temperature >= 0.0f)) {
    return InvalidArgument(OutOfRange("temperature", p.temperature, "finite and >= 0"));
  }
  if (p.top_k < -1) {
    return InvalidArgument(OutOfRange("top_k", p.top_k, ">= 1, or 0 / -1 to disable"));
  }
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return InvalidArgument(OutOfRange("top_p", p.top_p, "in (0, 1]"));
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    return InvalidArgument(OutOfRange("min_p", p.min_p, "in [0, 1]"));
  }
  if (!(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0.0f)) {
    return InvalidArgument(
        OutOfRange("repetition_penalty", p.repetition_penalty, "finite and > 0"));
  }
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f)) {
    return InvalidArgument(OutOfRange("presence_penalty", p.presence_penalty, "in [-2, 2]"));
  }
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f)) {
    return InvalidArgument(OutOfRange("frequency_penalty", p.frequency_penalty, "in [-2, 2]"));
  }
  if (p.top_logprobs < 0 || p.top_logprobs > kMaxTopLogprobs) {
    return InvalidArgument(OutOfRange("top_logprobs", p.top_logprobs, "in [0, 20]"));
  }
  return OkStatus();
}

double LogSumExp(std::span<const float> logits) {
  OnlineLogSumExp lse;
  for (size_t b = 0; b < logits.size(); b += kBlock) {
    const float* x = logits.data() + b;
    const size_t len = std::min(kBlock, logits.size() - b);
    lse.AddBlock(x, len, kernels::RowMax(x, len));
  }
  return lse.Value();
}

void LogSoftmax(std::span<const float> logits, std::span<float> out) {
  TSR_CHECK(out.size() == logits.size() && !logits.empty());
  const double log_z = LogSumExp(logits);
  for (size_t i = 0; i < logits.size(); ++i) {
    out[i] = static_cast<float>(logits[i] - log_z);
  }
}

Sampler::Sampler(SamplingParams params, std::span<const int32_t> prompt_ids)
    : params_(std::move(params)) {
  TSR_CHECK(ValidateSamplingParams(params_).ok());
  uint64_t seed;
  if (params_.seed.has_value()) {
    seed = *params_.seed;
  } else {
    std::random_device rd;
    seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  rng_.seed(seed);
  // Only the repetition penalty looks at the prompt; skip the bookkeeping when it is off.
  if (params_.repetition_penalty != 1.0f) {
    for (int32_t id : prompt_ids) {
      if (id >= 0) seen_.push_back({id, true, 0});
    }
    std::sort(seen_.begin(), seen_.end(), [](const Seen& a, const Seen& b) { return a.id < b.id; });
    seen_.erase(std::unique(seen_.begin(), seen_.end(),
                            [](const Seen& a, const Seen& b) { return a.id == b.id; }),
                seen_.end());
  }
}

bool Sampler::PenaltiesActive() const {
  return params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
         params_.frequency_penalty != 0.0f;
}

void Sampler::Accept(int32_t id) {
  if (id < 0 || !PenaltiesActive()) return;
  auto it = std::lower_bound(seen_.begin(), seen_.end(), id,
                             [](const Seen& s, int32_t v) { return s.id < v; });
  if (it != seen_.end() && it->id == id) {
    ++it->output_count;
  } else {
    seen_.insert(it, {id, false, 1});  // O(#seen) memmove; #seen is at most the context length
  }
}

// Same float operations, in the same order, as vLLM's apply_penalties: repetition, then
// frequency, then presence.
float Sampler::Penalize(float logit, const Seen& s) const {
  float y = logit;
  const float rep = params_.repetition_penalty;
  if (rep != 1.0f) y = y > 0.0f ? y / rep : y * rep;
  if (s.output_count > 0) {
    y -= params_.frequency_penalty * static_cast<float>(s.output_count);
    y -= params_.presence_penalty;
  }
  return y;
}

void Sampler::ApplyPenalties(std::span<float> logits) const {
  for (const Seen& s : seen_) {
    if (static_cast<size_t>(s.id) >= logits.size()) break;  // sorted: the rest are out of range
    logits[s.id] = Penalize(logits[s.id], s);
  }
}

// One pass over the row, block by block: argmax of the penalized logits (lowest id on ties: runs
// are visited in id order, only a strictly larger value wins, and a run's max is located at its
// first occurrence) fused with the log-sum-exp of the raw logits. Unpenalized tokens are handled
// as runs between consecutive seen ids, so the hot path has no per-token lookup.
int32_t Sampler::GreedyPick(std::span<const float> logits, double* log_z) const {
  const float* row = logits.data();
  const size_t n = logits.size();
  OnlineLogSumExp lse;
  float best = kNegInf;
  int32_t best_id = 0;  // stays 0 for an all -inf row
  auto consider_run = [&](size_t from, size_t to, float run_max) {
    if (!(run_max > best)) return;
    size_t j = from;
    while (j < to && row[j] != run_max) ++j;
    best = run_max;
    best_id = static_cast<int32_t>(j);
  };
  size_t next_seen = 0;
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t e = std::min(n, b + kBlock);
    const float block_max = kernels::RowMax(row + b, e - b);
    lse.AddBlock(row + b, e - b, block_max);
    if (next_seen == seen_.size() || static_cast<size_t>(seen_[next_seen].id) >= e) {
      consider_run(b, e, block_max);  // no penalized token here: the block is one run
      continue;
    }
    size_t i = b;
    while (i < e) {
      const bool penalized_ahead =
          next_seen < seen_.size() && static_cast<size_t>(seen_[next_seen].id) < e;
      const size_t stop = penalized_ahead ? static_cast<size_t>(seen_[next_seen].id) : e;
      if (stop > i) consider_run(i, stop, kernels::RowMax(row + i, stop - i));
      i = stop;
      if (penalized_ahead) {
        const float y = Penalize(row[i], seen_[next_seen]);
        if (y > best) {
          best = y;
          best_id = static_cast<int32_t>(i);
        }
        ++next_seen;
        ++i;
      }
    }
  }
  *log_z = lse.Value();
  return best_id;
}

// [0, 1) with 53 random bits. Done by hand because std::uniform_real_distribution's output is
// implementation-defined, and a seed must give the same stream on every standard library.
double Sampler::UniformDouble() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

namespace {
// Index of the first positive weight whose running sum exceeds `target`, within [from, to), or
// the last positive one when rounding leaves the running sum just short of it.
int32_t ScanForTarget(const float* w, size_t from, size_t to, double target) {
  double cum = 0.0;
  int32_t last_positive = static_cast<int32_t>(from);  // callers pass a block with weight
  for (size_t i = from; i < to; ++i) {
    if (w[i] > 0.0f) {
      cum += w[i];
      last_positive = static_cast<int32_t>(i);
      if (cum > target) break;
    }
  }
  return last_positive;
}
}  // namespace

// Processes the row (penalties, temperature), folds top-k / top-p / min-p into one logit
// threshold (each keeps a set of the form {logit >= t}), and draws by inverse CDF: per-block sums
// locate the block, one block is scanned.
int32_t Sampler::DrawPick(std::span<const float> logits) {
  const size_t n = logits.size();
  Workspace& ws = ThreadWorkspace();
  ws.work.assign(logits.begin(), logits.end());
  ApplyPenalties(ws.work);
  float* w = ws.work.data();
  const float s_max = kernels::DivideAndMax(w, n, params_.temperature);
  if (s_max == kNegInf) return 0;  // every token masked: nothing to draw from

  float threshold = kNegInf;
  float top_k_threshold = kNegInf;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    top_k_threshold = TopKThreshold(ws.work, static_cast<size_t>(params_.top_k), s_max, ws);
    threshold = top_k_threshold;
  }
  if (params_.top_p < 1.0f) {
    threshold =
        std::max(threshold, TopPThreshold(ws.work, params_.top_p, top_k_threshold, s_max, ws));
  }
  // min-p keeps p_i >= min_p * p_max, i.e. s_i - s_max >= log(min_p): relative to the best token,
  // which every truncation keeps, so applying it last equals applying it to the truncated row.
  if (params_.min_p > 0.0f) threshold = std::max(threshold, s_max + std::log(params_.min_p));

  ws.block_sums.clear();
  double z = 0.0;
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t len = std::min(kBlock, n - b);
    ws.block_sums.push_back(kernels::ExpAbove(w + b, w + b, len, s_max, threshold));
    z += ws.block_sums.back();
  }
  const double target = UniformDouble() * z;
  double cum = 0.0;
  size_t last_block = ws.block_sums.size();
  for (size_t blk = 0; blk < ws.block_sums.size(); ++blk) {
    const double bs = ws.block_sums[blk];
    if (bs <= 0.0) continue;
    const size_t from = blk * kBlock;
    if (cum + bs > target) return ScanForTarget(w, from, std::min(n, from + kBlock), target - cum);
    cum += bs;
    last_block = blk;
  }
  // z > target in exact arithmetic; rounding can land here: take the last drawable token.
  if (last_block == ws.block_sums.size()) return 0;  // unreachable: the max always has weight 1
  const size_t from = last_block * kBlock;
  return ScanForTarget(w, from, std::min(n, from + kBlock), HUGE_VAL);
}

SampledToken Sampler::Sample(std::span<const float> logits) {
  TSR_CHECK(!logits.empty());
  SampledToken out;
  double log_z;
  if (params_.temperature < kGreedyTemperatureEpsilon) {
    out.id = GreedyPick(logits, &log_z);
  } else {
    log_z = LogSumExp(logits);
    out.id = DrawPick(logits);
  }
  out.logprob = static_cast<float>(logits[out.id] - log_z);
  if (params_.top_logprobs > 0) {
    out.top = TopLogprobs(logits, static_cast<size_t>(params_.top_logprobs), log_z);
  }
  return out;
}

}  // namespace tessera::text
