// RoPE inverse frequencies. Each helper mirrors one transformers function; comments give the
// torch expression being reproduced. Torch rules that decide the rounding:
//   * float32 tensor (op) Python scalar: the scalar is cast to float32, the op runs in float32;
//   * `scalar / tensor` is `tensor.reciprocal() * scalar` (Tensor.__rtruediv__);
//   * `scalar ** tensor` is pow(float32(scalar), tensor) in float32;
//   * Python-scalar arithmetic (math.log, factor ratios) is double.
// pow is computed in double and rounded once, i.e. correctly rounded in practice.
#include "tessera/core/model/rope.h"

#include <algorithm>
#include <cmath>
#include <string>

// Fused multiply-adds would change the float32 rounding sequence being reproduced.
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

namespace tessera {
namespace {

constexpr double kPi = 3.14159265358979323846;

float F(double x) {
  return static_cast<float>(x);
}
float PowF(float base, float exponent) {
  return static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
}

// base ** (torch.arange(0, dim, 2).float() / dim): (dim / 2) values.
std::vector<float> PosFreqs(double base, int dim) {
  std::vector<float> out;
  const float base_f = F(base);
  for (int i = 0; i < dim; i += 2) {
    const float exponent = static_cast<float>(i) / static_cast<float>(dim);
    out.push_back(PowF(base_f, exponent));
  }
  return out;
}

// 1.0 / (base ** (arange(0, dim, 2) / dim))
std::vector<float> DefaultInvFreq(double base, int dim) {
  std::vector<float> inv = PosFreqs(base, dim);
  for (float& v : inv) v = 1.0f / v;
  return inv;
}

StatusOr<int> RotaryDim(const RopeConfig& rope, int head_dim) {
  const int dim = static_cast<int>(static_cast<double>(head_dim) * rope.partial_rotary_factor);
  if (dim <= 0 || dim % 2 != 0) {
    return InvalidArgument("rope: rotary dim int(head_dim " + std::to_string(head_dim) + " * " +
                           "partial_rotary_factor " + std::to_string(rope.partial_rotary_factor) +
                           ") = " + std::to_string(dim) + " must be positive and even");
  }
  return dim;
}

StatusOr<double> Required(const std::optional<double>& v, const char* key, const RopeConfig& r) {
  if (!v) return InvalidArgument("rope: '" + r.type + "' needs '" + key + "'");
  return *v;
}

int64_t OriginalMaxPositions(const RopeConfig& r) {
  return r.original_max_position_embeddings.value_or(r.max_position_embeddings);
}

// _compute_dynamic_ntk_parameters
StatusOr<RopeInvFreq> Dynamic(const RopeConfig& r, int dim, int64_t seq_len) {
  TSR_ASSIGN_OR_RETURN(double factor, Required(r.factor, "factor", r));
  if (r.max_position_embeddings <= 0) {
    return InvalidArgument("rope: 'dynamic' needs max_position_embeddings");
  }
  if (dim <= 2) return InvalidArgument("rope: 'dynamic' needs a rotary dim > 2");
  const double max_pos = static_cast<double>(r.max_position_embeddings);
  const double seq = static_cast<double>(std::max(seq_len, r.max_position_embeddings));
  // base * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2)), all Python floats.
  const double base = r.theta * std::pow((factor * seq / max_pos) - (factor - 1.0),
                                         static_cast<double>(dim) / static_cast<double>(dim - 2));
  return RopeInvFreq{DefaultInvFreq(base, dim), 1.0f};
}

// _compute_llama3_parameters
StatusOr<RopeInvFreq> Llama3(const RopeConfig& r, int dim) {
  TSR_ASSIGN_OR_RETURN(double factor, Required(r.factor, "factor", r));
  TSR_ASSIGN_OR_RETURN(double low_ff, Required(r.low_freq_factor, "low_freq_factor", r));
  TSR_ASSIGN_OR_RETURN(double high_ff, Required(r.high_freq_factor, "high_freq_factor", r));
  const double old_ctx = static_cast<double>(OriginalMaxPositions(r));
  const float low_wavelen = F(old_ctx / low_ff);
  const float high_wavelen = F(old_ctx / high_ff);
  const float two_pi = F(2.0 * kPi);
  const float factor_f = F(factor);
  const float low_ff_f = F(low_ff);
  const float ff_span_f = F(high_ff - low_ff);
  const float old_ctx_f = F(old_ctx);

  std::vector<float> inv = DefaultInvFreq(r.theta, dim);
  for (float& v : inv) {
    const float wavelen = (1.0f / v) * two_pi;  // 2 * math.pi / inv_freq
    float llama = wavelen > low_wavelen ? v / factor_f : v;
    // smooth = (old_context_len / wavelen - low_freq_factor) / (high - low)
    const float ratio = (1.0f / wavelen) * old_ctx_f;
    const float smooth = (ratio - low_ff_f) / ff_span_f;
    // smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
    const float one_minus = 1.0f - smooth;
    const float left = (one_minus * llama) / factor_f;
    const float right = smooth * llama;
    const float smoothed = left + right;
    const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    v = medium ? smoothed : llama;
  }
  return RopeInvFreq{std::move(inv), 1.0f};
}

double YarnMscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// find_correction_dim: (dim * log(max_pos / (num_rot * 2 * pi))) / (2 * log(base))
double CorrectionDim(double num_rot, int dim, double base, double max_pos) {
  return (dim * std::log(max_pos / (num_rot * 2 * kPi))) / (2 * std::log(base));
}

// _compute_yarn_parameters
StatusOr<RopeInvFreq> Yarn(const RopeConfig& r, int dim) {
  const int64_t original = OriginalMaxPositions(r);
  if (original <= 0) return InvalidArgument("rope: 'yarn' needs original_max_position_embeddings");
  const double factor =
      r.factor ? *r.factor
               : static_cast<double>(r.max_position_embeddings) / static_cast<double>(original);
  if (!(factor > 0.0)) return InvalidArgument("rope: 'yarn' needs a positive factor");
  double attention = 0.0;
  if (r.attention_factor) {
    attention = *r.attention_factor;
  } else if (r.mscale.value_or(0.0) != 0.0 && r.mscale_all_dim.value_or(0.0) != 0.0) {
    attention = YarnMscale(factor, *r.mscale) / YarnMscale(factor, *r.mscale_all_dim);
  } else {
    attention = YarnMscale(factor, 1.0);
  }
  // `get("beta_fast") or 32`: absent and 0 both mean the default.
  const double beta_fast = r.beta_fast.value_or(0.0) != 0.0 ? *r.beta_fast : 32.0;
  const double beta_slow = r.beta_slow.value_or(0.0) != 0.0 ? *r.beta_slow : 1.0;

  double low = CorrectionDim(beta_fast, dim, r.theta, static_cast<double>(original));
  double high = CorrectionDim(beta_slow, dim, r.theta, static_cast<double>(original));
  if (r.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // linear_ramp_factor's singularity guard

  const std::vector<float> pos = PosFreqs(r.theta, dim);
  const float factor_f = F(factor);
  const float low_f = F(low);
  const float span_f = F(high - low);
  std::vector<float> inv(pos.size());
  for (size_t i = 0; i < pos.size(); ++i) {
    const float extrapolation = 1.0f / pos[i];
    const float interpolation = 1.0f / (factor_f * pos[i]);
    // ramp = clamp((arange(dim // 2) - low) / (high - low), 0, 1); extrapolation_factor = 1 - ramp
    const float linear = (static_cast<float>(i) - low_f) / span_f;
    const float ramp = std::min(std::max(linear, 0.0f), 1.0f);
    const float extra_factor = 1.0f - ramp;
    const float inter_weight = 1.0f - extra_factor;
    const float a = interpolation * inter_weight;
    const float b = extrapolation * extra_factor;
    inv[i] = a + b;
  }
  return RopeInvFreq{std::move(inv), F(attention)};
}

// _compute_longrope_parameters
StatusOr<RopeInvFreq> LongRope(const RopeConfig& r, int dim, int64_t seq_len) {
  const int64_t original = OriginalMaxPositions(r);
  if (original <= 0) {
    return InvalidArgument("rope: 'longrope' needs original_max_position_embeddings");
  }
  const bool use_long = seq_len > 0 && seq_len > original;
  const std::vector<double>& ext = use_long ? r.long_factor : r.short_factor;
  if (ext.size() != static_cast<size_t>(dim / 2)) {
    return InvalidArgument(std::string("rope: longrope ") +
                           (use_long ? "long_factor" : "short_factor") + " has " +
                           std::to_string(ext.size()) + " values, rotary dim " +
                           std::to_string(dim) + " needs " + std::to_string(dim / 2));
  }
  const double factor =
      r.factor ? *r.factor
               : static_cast<double>(r.max_position_embeddings) / static_cast<double>(original);
  if (!(factor > 0.0)) return InvalidArgument("rope: 'longrope' needs a positive factor");
  double attention = 1.0;
  if (r.attention_factor) {
    attention = *r.attention_factor;
  } else if (factor > 1.0) {
    attention = std::sqrt(1.0 + std::log(factor) / std::log(static_cast<double>(original)));
  }
  std::vector<float> inv = PosFreqs(r.theta, dim);  // base ** inv_freq_shape
  for (size_t i = 0; i < inv.size(); ++i) inv[i] = 1.0f / (F(ext[i]) * inv[i]);
  return RopeInvFreq{std::move(inv), F(attention)};
}

// _compute_proportional_rope_parameters (Gemma 4): always head_dim / 2 values, the trailing
// ones zero (not rotated).
StatusOr<RopeInvFreq> Proportional(const RopeConfig& r, int head_dim) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    return InvalidArgument("rope: 'proportional' needs a positive even head_dim");
  }
  // int(rope_proportion * head_dim // 2): Python float floor division.
  const int angles =
      static_cast<int>(std::floor(r.partial_rotary_factor * static_cast<double>(head_dim) / 2.0));
  const float base_f = F(r.theta);
  const float factor_f = F(r.factor.value_or(1.0));
  std::vector<float> inv(static_cast<size_t>(head_dim / 2), 0.0f);
  for (int i = 0; i < angles && i < head_dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv[i] = 1.0f / PowF(base_f, exponent);
  }
  for (float& v : inv) v = v / factor_f;
  return RopeInvFreq{std::move(inv), 1.0f};
}

}  // namespace

StatusOr<RopeInvFreq> ComputeRopeInvFreq(const RopeConfig& rope, int head_dim, int64_t seq_len) {
  if (!(rope.theta > 0.0) || !std::isfinite(rope.theta)) {
    return InvalidArgument("rope: rope_theta must be positive");
  }
  if (rope.type == "proportional") return Proportional(rope, head_dim);
  TSR_ASSIGN_OR_RETURN(int dim, RotaryDim(rope, head_dim));
  if (rope.type == "default") return RopeInvFreq{DefaultInvFreq(rope.theta, dim), 1.0f};
  if (rope.type == "linear") {
    TSR_ASSIGN_OR_RETURN(double factor, Required(rope.factor, "factor", rope));
    if (!(factor > 0.0)) return InvalidArgument("rope: 'linear' needs a positive factor");
    std::vector<float> inv = DefaultInvFreq(rope.theta, dim);
    const float factor_f = F(factor);
    for (float& v : inv) v = v / factor_f;  // inv_freq /= factor
    return RopeInvFreq{std::move(inv), 1.0f};
  }
  if (rope.type == "dynamic") return Dynamic(rope, dim, seq_len);
  if (rope.type == "llama3") return Llama3(rope, dim);
  if (rope.type == "yarn") return Yarn(rope, dim);
  if (rope.type == "longrope") return LongRope(rope, dim, seq_len);
  return Unimplemented("rope: rope_type '" + rope.type + "' is not supported");
}

}  // namespace tessera
