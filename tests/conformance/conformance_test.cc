// The op-conformance suite: every case of cases.cc on every target of targets.cc, each output
// checked against reference.cc under the per-op tolerance stated below.
//
// Vendors run this binary on their own plugin:
//   TESSERA_CONFORMANCE_PLUGINS=/path/to/libtessera_backend_x.so op_conformance_test
// Test names are <backend>__<case>, so --gtest_filter='cuda__MATMUL*' picks one backend's matmuls.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cases.h"
#include "harness.h"
#include "reference.h"
#include "targets.h"

namespace tessera::conformance {
namespace {

// ---- Tolerances ------------------------------------------------------------------------------
//
// An output element passes when |got - want| <= atol + rtol * scale, where want is the double
// reference rounded to f32 and scale = max(|want|, magnitude): for dot products and sums the
// magnitude is sum(|terms|), because that, not |result|, is what a correct f32 kernel's rounding
// error grows with (a result near 0 from large cancelling terms is legitimately less exact).
// Inputs are O(1) unless a case says otherwise. Exact means bit-for-bit (as decoded values).
struct Tolerance {
  tsr_op op;
  double atol, rtol;
  const char* why;
};

constexpr const char* kDotWhy =
    "f32 accumulation of up to 4128 products, bounded relative to sum|x*w|: ~30 eps, several "
    "times the random-walk error of a plain sequential f32 sum at K=4128. Weights decode "
    "exactly (f16/bf16 widen exactly; q8/q4 d*q is exact in f32) and the reference uses the "
    "SAME quantized bytes, so quantized weights get the same bound. Kernels that round the f32 "
    "activations (to bf16, or to q8 ggml-style) fail by design: the ABI says in0 is f32";
constexpr const char* kTranscendentalWhy =
    "vectorized exp/tanh/erf approximations are a few ulp; 2e-5 relative (~170 ulp) admits any "
    "decent one and still catches a wrong formula (erf- vs tanh-GELU differ by ~1e-3); atol "
    "1e-6 covers the cancellation in 1 + erf(x) / 1 + tanh(x) for x near -5";

constexpr Tolerance kTolerances[] = {
    {TSR_OP_MATMUL, 1e-6, 2e-6, kDotWhy},
    {TSR_OP_ADD, 0, 1e-6, "one f32 rounding (6e-8); slack for reassociated broadcasts"},
    {TSR_OP_SUB, 0, 1e-6, "one f32 rounding (6e-8); slack for reassociated broadcasts"},
    {TSR_OP_MUL, 0, 1e-6, "one f32 rounding (6e-8); slack for reassociated broadcasts"},
    {TSR_OP_DIV, 0, 2e-6, "x * (1/y) is two roundings; |y| >= 0.25 in the cases"},
    {TSR_OP_SCALE, 1e-7, 1e-6, "FMA vs multiply-then-add; atol for x*a+b cancelling to ~0"},
    {TSR_OP_SILU, 1e-6, 2e-5, kTranscendentalWhy},
    {TSR_OP_GELU, 1e-6, 2e-5, kTranscendentalWhy},
    {TSR_OP_GELU_TANH, 1e-6, 2e-5, kTranscendentalWhy},
    {TSR_OP_RELU, 0, 0, "exact: max(x, 0)"},
    {TSR_OP_TANH, 1e-6, 2e-5, kTranscendentalWhy},
    {TSR_OP_SIGMOID, 1e-6, 2e-5, kTranscendentalWhy},
    {TSR_OP_SOFTCAP, 1e-6, 2e-5, kTranscendentalWhy},
    {TSR_OP_SWIGLU, 1e-6, 2e-5, kTranscendentalWhy},
    {TSR_OP_GEGLU, 1e-6, 2e-5, kTranscendentalWhy},
    {TSR_OP_RMS_NORM, 1e-5, 1e-5,
     "a 4097-term f32 mean of squares (~sqrt(D)*eps = 4e-6 relative) then an (r)sqrt"},
    {TSR_OP_LAYER_NORM, 1e-5, 1e-5,
     "f32 mean and variance over up to 4097 values, then an (r)sqrt; inputs have a nonzero mean"},
    {TSR_OP_ROPE, 1e-5, 1e-5,
     "the angle is the f32 product pos*inv_freq on both sides (as HF forms it); f32 sin/cos of "
     "angles up to ~5000 rad: a few ulp with good range reduction, 1e-5 admits cheaper ones"},
    {TSR_OP_SOFTMAX, 1e-6, 1e-5, "exp approximation plus a 4097-term f32 sum; outputs <= 1"},
    {TSR_OP_ATTENTION, 2e-5, 2e-5,
     "dot products of <= 128 terms, exp, soft-cap tanh and a weighted sum over up to 4097 keys; "
     "online (flash) softmax adds a rescale per key block"},
    {TSR_OP_KV_WRITE, 0, 0, "exact: a copy (f32 -> f16 cache rounds to nearest even)"},
    {TSR_OP_PAGED_ATTENTION, 2e-5, 2e-5, "as ATTENTION"},
    {TSR_OP_GET_ROWS, 0, 0, "exact: a gather, and every dtype decodes exactly to f32"},
    {TSR_OP_COPY, 0, 0,
     "exact: casts round to nearest even (IEEE default; torch .to() does the same for bf16), "
     "dequantization is exact; quantized outputs are compared as bytes (CompareQuantized)"},
    {TSR_OP_CONCAT, 0, 0, "exact: data movement"},
    {TSR_OP_CONV1D, 1e-6, 2e-6, kDotWhy},
    {TSR_OP_CONV2D, 1e-6, 2e-6, kDotWhy},
    {TSR_OP_SUM, 1e-6, 2e-6, "f32 sum of up to 4097 terms, relative to sum|x|"},
    {TSR_OP_MEAN, 1e-6, 2e-6, "f32 sum of up to 4097 terms, relative to sum|x| / n"},
    {TSR_OP_MAX, 0, 0, "exact: a comparison"},
    {TSR_OP_ARGMAX, 0, 0, "exact: an index (lowest on ties, NaN never wins, 0 when none > -inf)"},
};

const Tolerance& ToleranceFor(tsr_op op) {
  for (const Tolerance& t : kTolerances) {
    if (t.op == op) return t;
  }
  static const Tolerance kNone{TSR_OP_NONE, 0, 0, "no tolerance entry: exact"};
  return kNone;
}

// ---- Comparison ------------------------------------------------------------------------------

std::string IndexString(const std::vector<int64_t>& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); ++d) s += (d ? ", " : "") + std::to_string(idx[d]);
  return s + "]";
}

struct Comparison {
  std::string report;        // empty on success, else max abs/rel error and first mismatches
  double worst_ratio = 0.0;  // largest error / allowed error: how close the kernel is to failing
};

Comparison CompareValues(const Tensor& got, const RefResult& ref, const Tolerance& tol) {
  const Tensor& want = ref.out;
  int64_t bad = 0, worst = -1;
  double max_abs = 0, max_rel = 0, worst_ratio = 0;
  std::ostringstream first;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double w = want.values[i], g = got.values[i];
    const double mag = ref.magnitude.empty() ? 0.0 : ref.magnitude[i];
    if (g == w) continue;  // also covers equal infinities
    // A NaN or infinity that differs from the reference is always wrong.
    const double err = std::isfinite(g) && std::isfinite(w) ? std::fabs(g - w) : INFINITY;
    const double allowed = tol.atol + tol.rtol * std::max(std::fabs(w), mag);
    max_abs = std::max(max_abs, err);
    max_rel = std::max(max_rel, err / std::max(std::fabs(w), 1e-30));
    const double ratio = allowed > 0 ? err / allowed : INFINITY;
    if (worst < 0 || ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = i;
    }
    if (err <= allowed) continue;
    if (++bad <= 5) {
      first << "\n    at " << IndexString(want.shape, i) << ": got " << g << ", want " << w
            << " (abs err " << err << ", allowed " << allowed << ")";
    }
  }
  Comparison result;
  result.worst_ratio = worst_ratio;
  if (bad == 0) return result;
  std::ostringstream s;
  s.precision(9);
  s << bad << " of " << want.numel() << " elements out of tolerance (atol " << tol.atol << ", rtol "
    << tol.rtol << ": " << tol.why << ")\n  max abs err " << max_abs << ", max rel err " << max_rel
    << "; worst at " << IndexString(want.shape, worst) << ": got " << got.values[worst] << ", want "
    << want.values[worst] << "\n  first mismatches:" << first.str();
  result.report = s.str();
  return result;
}

// The quantized value of element i of a row of blocks (Q8: -127..127, Q4: the nibble 0..15).
int QuantAt(tsr_dtype dt, const uint8_t* row, int64_t i) {
  const int64_t b = i / TSR_QBLOCK, j = i % TSR_QBLOCK;
  if (dt == TSR_DTYPE_Q8_B32) return static_cast<int8_t>(row[b * TSR_BLOCK_Q8_BYTES + 2 + j]);
  const uint8_t* qs = row + b * TSR_BLOCK_Q4_BYTES + 2;
  return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
}

// Whether `q` is what the quantizer yields for x in block `xb` when x/d is computed as x*(1/d)
// (ggml does this) and, for Q4, when x*(1/d) + 8.5 is fused. Those differ from the specified
// x/d only where x/d sits within an ulp of a rounding boundary, so we accept them; an exact tie
// (x/d == k + 0.5 exactly) is the same in every form and must round away from zero.
bool AcceptedAlternative(tsr_dtype dt, const float* xb, float x, int q) {
  if (dt == TSR_DTYPE_Q8_B32) {
    float amax = 0;
    for (int i = 0; i < TSR_QBLOCK; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    return q == std::clamp(static_cast<int>(std::round(x * id)), -127, 127);
  }
  float amax = 0, m = 0;
  for (int i = 0; i < TSR_QBLOCK; ++i) {
    if (std::fabs(xb[i]) > amax) amax = std::fabs(xb[i]), m = xb[i];
  }
  const float d = m / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
  const int a = std::clamp(static_cast<int>(std::trunc(x * id + 8.5f)), 0, 15);
  const int b = std::clamp(static_cast<int>(std::trunc(std::fma(x, id, 8.5f))), 0, 15);
  return q == a || q == b;
}

// COPY to Q8/Q4: scales must match the reference bytes exactly; each quantized value must match
// or be an AcceptedAlternative. Empty on success.
std::string CompareQuantized(const Tensor& input, const Tensor& got, const Tensor& want,
                             int64_t* near_ties) {
  const tsr_dtype dt = want.dtype;
  const int64_t inner = want.shape.back(), row_bytes = RowBytes(dt, inner);
  const int64_t block_bytes = dt == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  int64_t bad = 0;
  *near_ties = 0;
  std::ostringstream s;
  for (int64_t r = 0; r < want.rows(); ++r) {
    const uint8_t* g = got.raw.data() + r * row_bytes;
    const uint8_t* w = want.raw.data() + r * row_bytes;
    for (int64_t b = 0; b < inner / TSR_QBLOCK; ++b) {
      const uint8_t* gb = g + b * block_bytes;
      const uint8_t* wb = w + b * block_bytes;
      if (gb[0] != wb[0] || gb[1] != wb[1]) {
        if (++bad <= 5) {
          s << "\n    row " << r << " block " << b << ": scale "
            << F16ToF32(static_cast<uint16_t>(gb[0] | gb[1] << 8)) << ", want "
            << F16ToF32(static_cast<uint16_t>(wb[0] | wb[1] << 8));
        }
        continue;
      }
      const float* xb = input.values.data() + r * inner + b * TSR_QBLOCK;
      for (int64_t j = 0; j < TSR_QBLOCK; ++j) {
        const int64_t i = b * TSR_QBLOCK + j;
        const int qg = QuantAt(dt, g, i), qw = QuantAt(dt, w, i);
        if (qg == qw) continue;
        if (AcceptedAlternative(dt, xb, xb[j], qg)) {
          ++*near_ties;
          continue;
        }
        if (++bad <= 5) {
          s << "\n    row " << r << " element " << i << " (x = " << xb[j] << "): q " << qg
            << ", want " << qw;
        }
      }
    }
  }
  if (bad == 0) return "";
  return std::to_string(bad) +
         " quantized scales/values differ from the reference quantizer "
         "(quant_formats.h):" +
         s.str();
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// ---- The parameterized test ------------------------------------------------------------------

struct Param {
  size_t target;
  size_t op_case;
};

std::vector<Param> AllParams() {
  std::vector<Param> params;
  for (size_t t = 0; t < ConformanceTargets().size(); ++t) {
    for (size_t c = 0; c < AllCases().size(); ++c) params.push_back({t, c});
  }
  return params;
}

std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  std::string name = ConformanceTargets()[info.param.target].name;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name + "__" + AllCases()[info.param.op_case].name;
}

// gtest prints a failing test's parameter; say which target and case rather than raw bytes.
void PrintTo(const Param& p, std::ostream* os) {
  *os << ConformanceTargets()[p.target].name << " x " << AllCases()[p.op_case].name;
}

class OpConformanceTest : public ::testing::TestWithParam<Param> {};

TEST_P(OpConformanceTest, MatchesReference) {
  const ConformanceTarget& target = ConformanceTargets()[GetParam().target];
  const OpCase& op_case = AllCases()[GetParam().op_case];
  CaseData data;
  data.rng.seed(static_cast<std::mt19937::result_type>(Fnv1a(op_case.name)));
  op_case.build(&data);
  const RefResult ref = RunReference(data.ToRefNode());
  ASSERT_TRUE(ref.error.empty()) << "bug in the test case: " << ref.error;
  data.spec.out_dtype = ref.out.dtype;
  data.spec.out_shape = ref.out.shape;

  const RunResult run = RunNode(target, data.spec);
  if (run.kind == RunResult::Kind::kUnsupported) {
    if (target.plugin_id == "cpu" && op_case.required) {
      FAIL() << "the cpu plugin must support every op the ABI names, but declined " << op_case.name
             << ": " << run.message;
    }
    // ARGMAX came with ABI 1.3 and is optional: plugins built before it never run it.
    const char* optional = op_case.op == TSR_OP_ARGMAX ? " (an optional op since ABI 1.3)" : "";
    GTEST_SKIP() << target.name << " does not support " << op_case.name << optional << ": "
                 << run.message;
  }
  ASSERT_EQ(run.kind, RunResult::Kind::kOk) << run.message;
  ASSERT_EQ(run.output.shape, ref.out.shape);
  ASSERT_EQ(run.output.dtype, ref.out.dtype);

  if (IsQuantized(ref.out.dtype)) {
    int64_t near_ties = 0;
    const std::string report =
        CompareQuantized(*data.spec.inputs[0].tensor, run.output, ref.out, &near_ties);
    EXPECT_TRUE(report.empty()) << report;
    if (near_ties > 0) {
      std::printf("  note: %lld values quantized via x*(1/d) rather than x/d (accepted)\n",
                  static_cast<long long>(near_ties));
    }
    return;
  }
  const Comparison cmp = CompareValues(run.output, ref, ToleranceFor(op_case.op));
  // In the XML report (--gtest_output=xml): the headroom left under the tolerance.
  RecordProperty("worst_error_over_allowed", std::to_string(cmp.worst_ratio));
  EXPECT_TRUE(cmp.report.empty()) << target.name << " " << op_case.name << ": " << cmp.report;
}

INSTANTIATE_TEST_SUITE_P(Ops, OpConformanceTest, ::testing::ValuesIn(AllParams()), ParamName);
// With no plugin there is nothing to instantiate; OpConformance.Targets explains instead.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OpConformanceTest);

TEST(OpConformance, Targets) {
  if (ConformanceTargets().empty()) {
    GTEST_SKIP() << "no backend plugin to test. Set TESSERA_CONFORMANCE_PLUGINS to a "
                    "':'-separated list of plugin .so files (e.g. "
                    "TESSERA_CONFORMANCE_PLUGINS=/path/to/libtessera_backend_x.so), or build "
                    "a backend into the default folder; see the messages above for plugins "
                    "that were found but could not be loaded or had no device.";
  }
  for (const ConformanceTarget& t : ConformanceTargets()) {
    std::printf("  target %s: %s %s\n", t.name.c_str(), t.api->name ? t.api->name : "?",
                t.api->version ? t.api->version : "");
  }
}

}  // namespace
}  // namespace tessera::conformance
