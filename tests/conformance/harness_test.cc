// Checks the harness itself against an in-process fake plugin: strided views arrive with the
// strides the ABI describes, outputs come back decoded, overruns and declines are reported.
#include "harness.h"

#include <gtest/gtest.h>

#include <cstring>

// The fake plugin's buffer: host memory.
struct tsr_buffer {
  std::vector<uint8_t> bytes;
};

namespace tessera::conformance {
namespace {

float ReadF32(const tsr_tensor& t, int64_t flat) {
  int64_t offset = 0;
  for (int i = t.ndim - 1; i >= 0; --i) {
    offset += (flat % t.ne[i]) * t.nb[i];
    flat /= t.ne[i];
  }
  float v;
  std::memcpy(&v, t.buffer->bytes.data() + t.offset + offset, 4);
  return v;
}

int64_t NumelOf(const tsr_tensor& t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim; ++i) n *= t.ne[i];
  return n;
}

tsr_status Alloc(tsr_device*, int32_t, uint64_t size, tsr_buffer** out, tsr_error*) {
  *out = new tsr_buffer{std::vector<uint8_t>(size)};
  return TSR_OK;
}
void Free(tsr_buffer* b) {
  delete b;
}
tsr_status Upload(tsr_buffer* dst, uint64_t off, const void* src, uint64_t size, tsr_event*,
                  tsr_error*) {
  std::memcpy(dst->bytes.data() + off, src, size);
  return TSR_OK;
}
tsr_status Download(tsr_buffer* src, uint64_t off, void* dst, uint64_t size, tsr_event*,
                    tsr_error*) {
  std::memcpy(dst, src->bytes.data() + off, size);
  return TSR_OK;
}
tsr_status Supports(tsr_device*, const tsr_graph_view* g, int32_t node, tsr_bool* out, tsr_error*) {
  const tsr_op op = g->nodes[node].op;
  *out = op == TSR_OP_ADD || op == TSR_OP_SUB;
  return TSR_OK;
}
// ADD: correct, reading inputs through their strides (same shapes only). SUB: computes a - b
// but writes one element past the output.
tsr_status Execute(tsr_device*, const tsr_graph_view* g, const int32_t* ids, int32_t, tsr_event*,
                   tsr_error*) {
  const tsr_node& n = g->nodes[ids[0]];
  const tsr_tensor& a = g->tensors[n.inputs[0]];
  const tsr_tensor& b = g->tensors[n.inputs[1]];
  const tsr_tensor& out = g->tensors[n.output];
  const int64_t count = NumelOf(out) + (n.op == TSR_OP_SUB ? 1 : 0);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t src = i % NumelOf(out);
    const float v =
        n.op == TSR_OP_ADD ? ReadF32(a, src) + ReadF32(b, src) : ReadF32(a, src) - ReadF32(b, src);
    std::memcpy(out.buffer->bytes.data() + out.offset + 4 * i, &v, 4);
  }
  return TSR_OK;
}

const tsr_plugin_api& FakeApi() {
  static const tsr_plugin_api api = [] {
    tsr_plugin_api a{};
    a.struct_size = sizeof(a);
    a.id = "fake";
    a.buffer_alloc = Alloc;
    a.buffer_free = Free;
    a.buffer_upload = Upload;
    a.buffer_download = Download;
    a.supports_op = Supports;
    a.execute = Execute;
    return a;
  }();
  return api;
}

NodeSpec Binary(tsr_op op, const Tensor& a, Layout al, const Tensor& b, Layout bl) {
  NodeSpec spec;
  spec.op = op;
  spec.inputs = {{&a, al}, {&b, bl}};
  spec.out_shape = a.shape;
  return spec;
}

TEST(HarnessTest, StridedViewsArriveAsDescribed) {
  const ConformanceTarget fake{"fake", &FakeApi(), nullptr, "fake"};
  std::vector<float> av(3 * 5), bv(3 * 5);
  for (int i = 0; i < 15; ++i) av[i] = static_cast<float>(i), bv[i] = 100.0f * i;
  const Tensor a = MakeF32({3, 5}, av), b = MakeF32({3, 5}, bv);
  for (Layout al : {Layout::kContiguous, Layout::kPaddedRows, Layout::kTransposed}) {
    for (Layout bl : {Layout::kContiguous, Layout::kPaddedRows, Layout::kTransposed}) {
      const RunResult r = RunNode(fake, Binary(TSR_OP_ADD, a, al, b, bl));
      ASSERT_EQ(r.kind, RunResult::Kind::kOk) << r.message;
      ASSERT_EQ(r.output.shape, a.shape);
      for (int i = 0; i < 15; ++i) {
        EXPECT_EQ(r.output.values[i], 101.0f * i) << LayoutName(al) << " " << LayoutName(bl);
      }
    }
  }
}

TEST(HarnessTest, ReportsOverrunAndDecline) {
  const ConformanceTarget fake{"fake", &FakeApi(), nullptr, "fake"};
  const Tensor a = MakeF32({2, 3}, {1, 2, 3, 4, 5, 6});
  RunResult r = RunNode(fake, Binary(TSR_OP_SUB, a, Layout::kContiguous, a, Layout::kContiguous));
  EXPECT_EQ(r.kind, RunResult::Kind::kError);
  EXPECT_NE(r.message.find("past the end"), std::string::npos) << r.message;
  r = RunNode(fake, Binary(TSR_OP_MUL, a, Layout::kContiguous, a, Layout::kContiguous));
  EXPECT_EQ(r.kind, RunResult::Kind::kUnsupported);
}

}  // namespace
}  // namespace tessera::conformance
