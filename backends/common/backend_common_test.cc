// Tests of the code the backend plugins share: tensor views, the ABI readers, the op validators
// and the C ABI helpers. The plugins' own tests (cpu_backend_test, op_conformance_test) cover the
// same rules end to end.
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tessera/backend/abi.h"
#include "tessera/backend/device_ctx.h"
#include "tessera/backend/node.h"
#include "tessera/backend/tensor.h"
#include "tessera/backend/validate.h"

namespace tessera::backend {
namespace {

// A contiguous tensor of `dtype` with shape `ne`.
TensorRef Contiguous(tsr_dtype dtype, std::initializer_list<int64_t> ne) {
  TensorRef t;
  t.dtype = dtype;
  t.ndim = static_cast<int>(ne.size());
  int i = 0;
  for (int64_t n : ne) t.ne[i++] = n;
  int64_t stride = DtypeSize(dtype);
  for (int d = t.ndim - 1; d >= 0; --d) {
    t.nb[d] = stride;
    stride *= t.ne[d];
  }
  return t;
}

// A node of `op` over `ins` (nullptr = absent input) writing `out`.
struct Node {
  tsr_node raw{};
  NodeArgs args;
  Node(tsr_op op, std::initializer_list<const TensorRef*> ins, const TensorRef* out) {
    raw.op = op;
    raw.n_inputs = static_cast<int32_t>(ins.size());
    args.node = &raw;
    args.n_in = raw.n_inputs;
    int i = 0;
    for (const TensorRef* t : ins) args.in[i++] = t;
    args.out = out;
  }
};

TEST(BackendTensorTest, ShapesAndLayout) {
  const TensorRef t = Contiguous(TSR_DTYPE_F32, {2, 3, 4});
  EXPECT_EQ(ShapeString(t), "f32[2, 3, 4]");
  EXPECT_EQ(t.NumElements(), 24);
  EXPECT_EQ(t.Rows(), 6);
  EXPECT_TRUE(t.IsContiguous());
  EXPECT_EQ(t.Extent(), 96);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_TRUE(BroadcastsTo(Contiguous(TSR_DTYPE_F32, {1, 4}), t));
  EXPECT_FALSE(BroadcastsTo(Contiguous(TSR_DTYPE_F32, {2, 4}), t));
  EXPECT_EQ(NumMatrices(t), 2);
  EXPECT_EQ(MatrixOffset(t, t, 1), 48);
  const TensorRef q = Contiguous(TSR_DTYPE_Q8_B32, {2, 64});
  EXPECT_STREQ(DtypeName(q.dtype), "q8_b32");
  EXPECT_TRUE(q.InnerContiguous());
}

TEST(BackendNodeTest, OpNames) {
  EXPECT_STREQ(OpName(TSR_OP_MATMUL), "MATMUL");
  EXPECT_STREQ(OpName(TSR_OP_MAX), "MAX");
  EXPECT_STREQ(OpName(TSR_OP_NONE), "NONE");
  EXPECT_STREQ(OpName(TSR_OP_COUNT), "UNKNOWN_OP");
}

TEST(BackendNodeTest, LoadTensorShapeRejectsMalformedTensors) {
  tsr_tensor raw[2] = {};
  raw[0].struct_size = sizeof(tsr_tensor);
  raw[0].dtype = TSR_DTYPE_Q4_B32;
  raw[0].ndim = 1;
  raw[0].ne[0] = 33;  // not a whole number of 32-blocks
  raw[0].nb[0] = 1;
  raw[1] = raw[0];
  raw[1].dtype = TSR_DTYPE_F32;
  raw[1].nb[0] = 4;
  tsr_graph_view g{};
  g.tensors = raw;
  g.n_tensors = 2;
  TensorRef t;
  tsr_tensor got;
  EXPECT_NE(LoadTensorShape(g, 0, &t, &got).find("multiple of 32"), std::string::npos);
  EXPECT_EQ(LoadTensorShape(g, 1, &t, &got), "");
  EXPECT_EQ(ShapeString(t), "f32[33]");
  EXPECT_NE(LoadTensorShape(g, 2, &t, &got).find("out of range"), std::string::npos);
  EXPECT_EQ(CheckTensorRange(1, t, 0, 132), "");
  EXPECT_NE(CheckTensorRange(1, t, 4, 132).find("overruns"), std::string::npos);
}

TEST(BackendValidateTest, MatmulAndBinary) {
  const TensorRef x = Contiguous(TSR_DTYPE_F32, {3, 8});
  const TensorRef w = Contiguous(TSR_DTYPE_F16, {5, 8});
  const TensorRef out = Contiguous(TSR_DTYPE_F32, {3, 5});
  EXPECT_EQ(ValidateNode(Node(TSR_OP_MATMUL, {&x, &w}, &out).args), "");
  const TensorRef bad_out = Contiguous(TSR_DTYPE_F32, {3, 4});
  EXPECT_NE(ValidateNode(Node(TSR_OP_MATMUL, {&x, &w}, &bad_out).args), "");
  EXPECT_NE(ValidateNode(Node(TSR_OP_MATMUL, {&x}, &out).args).find("missing input 1"),
            std::string::npos);
  const TensorRef row = Contiguous(TSR_DTYPE_F32, {8});
  EXPECT_EQ(ValidateNode(Node(TSR_OP_ADD, {&x, &row}, &x).args), "");
  EXPECT_NE(ValidateNode(Node(TSR_OP_SWIGLU, {&x, &row}, &x).args), "");  // gated: no broadcast
  EXPECT_NE(ValidateNode(Node(TSR_OP_NONE, {}, &x).args), "");
}

TEST(BackendValidateTest, Argmax) {
  const TensorRef x = Contiguous(TSR_DTYPE_F32, {2, 3, 7});
  const TensorRef out = Contiguous(TSR_DTYPE_I32, {2, 3, 1});
  EXPECT_STREQ(OpName(TSR_OP_ARGMAX), "ARGMAX");
  EXPECT_EQ(ValidateNode(Node(TSR_OP_ARGMAX, {&x}, &out).args), "");
  TensorRef strided = x;  // a transposed view: any f32 strides are allowed
  std::swap(strided.nb[1], strided.nb[2]);
  EXPECT_EQ(ValidateNode(Node(TSR_OP_ARGMAX, {&strided}, &out).args), "");
  const TensorRef f32_out = Contiguous(TSR_DTYPE_F32, {2, 3, 1});
  EXPECT_NE(ValidateNode(Node(TSR_OP_ARGMAX, {&x}, &f32_out).args).find("output must be i32"),
            std::string::npos);
  const TensorRef wide_out = Contiguous(TSR_DTYPE_I32, {2, 3, 2});
  EXPECT_NE(ValidateNode(Node(TSR_OP_ARGMAX, {&x}, &wide_out).args).find("last dim 1"),
            std::string::npos);
  const TensorRef bf16 = Contiguous(TSR_DTYPE_BF16, {2, 3, 7});
  EXPECT_NE(ValidateNode(Node(TSR_OP_ARGMAX, {&bf16}, &out).args), "");
  const TensorRef empty = Contiguous(TSR_DTYPE_F32, {2, 3, 0});
  EXPECT_NE(ValidateNode(Node(TSR_OP_ARGMAX, {&empty}, &out).args).find("1..2^31-1"),
            std::string::npos);
  EXPECT_NE(ValidateNode(Node(TSR_OP_ARGMAX, {}, &out).args).find("missing input 0"),
            std::string::npos);
}

// The optional-op mechanism: FindRunner has ARGMAX only where the plugin passes it.
using TestFn = int (*)();
#define TSR_TEST_RUNNER(Family) \
  int Run##Family() {           \
    return 1;                   \
  }
TESSERA_BACKEND_OP_FAMILIES(TSR_TEST_RUNNER)
#undef TSR_TEST_RUNNER
int RunArgmax() {
  return 2;
}
namespace without_optional {
TESSERA_BACKEND_DEFINE_FIND_RUNNER(TestFn)
}  // namespace without_optional
namespace with_argmax {
TESSERA_BACKEND_DEFINE_FIND_RUNNER_WITH(TestFn, TESSERA_BACKEND_OP_ARGMAX)
}  // namespace with_argmax

TEST(BackendNodeTest, OptionalOpsHaveRunnersOnlyWhereAPluginOptsIn) {
  for (int op = TSR_OP_NONE + 1; op < TSR_OP_COUNT; ++op) {
    if (op == TSR_OP_ARGMAX) continue;
    EXPECT_NE(without_optional::FindRunner(op), nullptr) << OpName(op);
    EXPECT_NE(with_argmax::FindRunner(op), nullptr) << OpName(op);
  }
  EXPECT_EQ(without_optional::FindRunner(TSR_OP_ARGMAX), nullptr);
  ASSERT_NE(with_argmax::FindRunner(TSR_OP_ARGMAX), nullptr);
  EXPECT_EQ(with_argmax::FindRunner(TSR_OP_ARGMAX)(), 2);
  EXPECT_EQ(with_argmax::FindRunner(TSR_OP_NONE), nullptr);
  EXPECT_EQ(with_argmax::FindRunner(TSR_OP_COUNT), nullptr);
}

TEST(BackendValidateTest, AttentionHasNoHeadDimLimit) {
  // Head dims above the CUDA backend's 256 are valid ABI; that cap is the CUDA plugin's own.
  const TensorRef q = Contiguous(TSR_DTYPE_F32, {4, 2, 512});
  const TensorRef kv = Contiguous(TSR_DTYPE_F16, {4, 1, 512});
  const TensorRef cu = Contiguous(TSR_DTYPE_I32, {2});
  const TensorRef out = Contiguous(TSR_DTYPE_F32, {4, 2, 512});
  EXPECT_EQ(ValidateNode(Node(TSR_OP_ATTENTION, {&q, &kv, &kv, &cu, &cu}, &out).args), "");
  const TensorRef bad_out = Contiguous(TSR_DTYPE_F32, {4, 2, 256});
  EXPECT_NE(ValidateNode(Node(TSR_OP_ATTENTION, {&q, &kv, &kv, &cu, &cu}, &bad_out).args)
                .find("must be [T, Hq, Dv] = [4, 2, 512]"),
            std::string::npos);
}

TEST(BackendValidateTest, KernelLimits) {
  const TensorRef q = Contiguous(TSR_DTYPE_F32, {4, 2, 512});
  const TensorRef k = Contiguous(TSR_DTYPE_F16, {4, 1, 512});
  const TensorRef v = Contiguous(TSR_DTYPE_F16, {4, 1, 128});
  const TensorRef cu = Contiguous(TSR_DTYPE_I32, {2});
  const TensorRef out = Contiguous(TSR_DTYPE_F32, {4, 2, 128});
  const Node attn(TSR_OP_ATTENTION, {&q, &k, &v, &cu, &cu}, &out);
  bool unsupported = false;
  // Both dims capped: the 512 query/key dim is over.
  EXPECT_EQ(ValidateKernelNode(attn.args, {256, 256, "cuda attention"}, &unsupported),
            "cuda attention supports head dims up to 256");
  EXPECT_TRUE(unsupported);
  // Only value dims capped: 128 fits.
  EXPECT_EQ(ValidateKernelNode(attn.args, {0, 256, "attention"}, &unsupported), "");
  EXPECT_FALSE(unsupported);
  EXPECT_EQ(ValidateKernelNode(attn.args, {0, 64, "attention"}, &unsupported),
            "attention supports value head dims up to 64");
  EXPECT_TRUE(unsupported);
  // A typed weight whose rows are not element-aligned is invalid, not unsupported.
  const TensorRef x = Contiguous(TSR_DTYPE_F32, {3, 8});
  TensorRef w = Contiguous(TSR_DTYPE_F16, {5, 8});
  w.nb[0] = 17;
  const TensorRef mm_out = Contiguous(TSR_DTYPE_F32, {3, 5});
  EXPECT_EQ(ValidateKernelNode(Node(TSR_OP_MATMUL, {&x, &w}, &mm_out).args, {}, &unsupported),
            "weight row stride must be a multiple of its element size");
  EXPECT_FALSE(unsupported);
  // ValidateNode's own rules come first.
  EXPECT_NE(ValidateKernelNode(Node(TSR_OP_NONE, {}, &x).args, {}, &unsupported), "");
  EXPECT_FALSE(unsupported);
}

TEST(BackendTensorTest, BroadcastWalk) {
  struct Walk {
    int ndim = 0;
    int64_t numel = 0, ne[TSR_MAX_DIMS] = {}, s[3][TSR_MAX_DIMS] = {};
  };
  const TensorRef out = Contiguous(TSR_DTYPE_F32, {2, 3, 4});
  const TensorRef row = Contiguous(TSR_DTYPE_F32, {4});
  const TensorRef* ts[3] = {&out, &row, nullptr};
  const Walk w = BroadcastWalk<Walk>(out, ts, 3, /*outer_only=*/false);
  EXPECT_EQ(w.ndim, 3);
  EXPECT_EQ(w.numel, 24);
  EXPECT_EQ(w.s[0][0], 48);
  EXPECT_EQ(w.s[1][0], 0);  // row is missing dims 0 and 1
  EXPECT_EQ(w.s[1][1], 0);
  EXPECT_EQ(w.s[1][2], 4);
  EXPECT_EQ(w.s[2][2], 0);  // null slot
  const Walk rows = BroadcastWalk<Walk>(out, ts, 3, /*outer_only=*/true);
  EXPECT_EQ(rows.ndim, 2);
  EXPECT_EQ(rows.numel, 6);
}

TEST(BackendValidateTest, ConvGeometry) {
  const TensorRef x = Contiguous(TSR_DTYPE_F32, {1, 2, 10});
  const TensorRef w = Contiguous(TSR_DTYPE_F32, {4, 2, 3});
  const TensorRef out = Contiguous(TSR_DTYPE_F32, {1, 4, 8});
  Node n(TSR_OP_CONV1D, {&x, &w}, &out);
  EXPECT_EQ(ValidateNode(n.args), "");
  ConvGeometry c;
  EXPECT_EQ(ConvGeometryFor(n.args, &c), "");
  EXPECT_EQ(c.Wo, 8);
  EXPECT_EQ(c.groups, 1);
  // A kernel one wider than the input: the span -1 / stride 2 would truncate to 0, i.e. one
  // output, so the span is checked before dividing.
  const TensorRef wide = Contiguous(TSR_DTYPE_F32, {4, 2, 11});
  const TensorRef one = Contiguous(TSR_DTYPE_F32, {1, 4, 1});
  Node too_wide(TSR_OP_CONV1D, {&x, &wide}, &one);
  too_wide.raw.iparams[0] = 2;  // stride
  EXPECT_NE(ValidateNode(too_wide.args).find("does not fit"), std::string::npos);
}

TEST(BackendValidateTest, ConcatParts) {
  TensorRef x = Contiguous(TSR_DTYPE_F32, {2, 3});
  TensorRef y = Contiguous(TSR_DTYPE_F32, {2, 5});
  TensorRef out = Contiguous(TSR_DTYPE_F32, {2, 8});
  alignas(4) uint8_t storage[64] = {};
  out.data = storage;
  Node n(TSR_OP_CONCAT, {&x, &y}, &out);
  n.raw.iparams[0] = -1;
  EXPECT_EQ(ValidateNode(n.args), "");
  TensorRef first, second;
  ConcatParts(n.args, &first, &second);
  EXPECT_EQ(ShapeString(first), "f32[2, 3]");
  EXPECT_EQ(ShapeString(second), "f32[2, 5]");
  EXPECT_EQ(first.data, storage);
  EXPECT_EQ(second.data, storage + 12);
  EXPECT_EQ(second.nb[0], 32);
}

// A context of the shape device_ctx.h expects.
struct FakeDevice {
  std::string name, description;
};
struct FakeCtx {
  std::string absence;
  std::vector<FakeDevice> devices;
};

TEST(BackendDeviceCtxTest, ContextEntries) {
  FakeCtx ctx;
  ctx.absence = "no driver";
  EXPECT_STREQ(AbsenceReason<FakeCtx>(&ctx), "no driver");
  EXPECT_STREQ(AbsenceReason<FakeCtx>(nullptr), "");
  tsr_error err{};
  int32_t n = -1;
  EXPECT_EQ(DeviceCount(&ctx, &n, &err), TSR_OK);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(DeviceCount<FakeCtx>(nullptr, &n, &err), TSR_ERR_INVALID_ARGUMENT);
  ctx.devices.push_back({"gpu0", "a test device"});
  tsr_device_props props{};
  EXPECT_EQ(CheckDeviceIndex(&ctx, 0, &props, "device_props", "Fake", &err), TSR_OK);
  EXPECT_EQ(CheckDeviceIndex(&ctx, 1, &props, "device_props", "Fake", &err), TSR_ERR_NOT_FOUND);
  EXPECT_STREQ(err.message, "device_props: no Fake device 1");
  EXPECT_EQ(CheckDeviceIndex(&ctx, 0, nullptr, "device_open", "Fake", &err),
            TSR_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "device_open: NULL argument");
  const tsr_device_props p = KernelDeviceProps(ctx.devices[0]);
  EXPECT_STREQ(p.name, "gpu0");
  EXPECT_EQ(p.exec_styles, static_cast<uint32_t>(TSR_EXEC_KERNEL));
  // CopyOut never writes past a shorter host struct.
  tsr_device_props small{};
  small.struct_size = offsetof(tsr_device_props, description);
  small.description = "untouched";
  CopyOut(p, &small);
  EXPECT_STREQ(small.name, "gpu0");
  EXPECT_STREQ(small.description, "untouched");
  EXPECT_EQ(CheckSingleBufferType(&ctx, 1, &props, "buffer_alloc", &err), TSR_ERR_NOT_FOUND);
  EXPECT_STREQ(err.message, "buffer_alloc: no buffer type 1");
}

// A device and buffer of the shape the buffer-entry checks expect.
struct FakeGpu {
  uint64_t max_alloc = 1024;
};
struct FakeBuffer {
  FakeGpu* dev = nullptr;
  uint64_t size = 0;
};
struct FakeEvent {
  FakeGpu* dev = nullptr;
};

TEST(BackendDeviceCtxTest, BufferEntryChecks) {
  FakeGpu gpu, other;
  FakeBuffer a{&gpu, 16}, b{&gpu, 8}, c{&other, 8};
  tsr_error err{};
  char host[16] = {};
  EXPECT_EQ(CheckTransferArgs(&a, 8, host, 8, "buffer_upload", &err), TSR_OK);
  EXPECT_EQ(CheckTransferArgs(&a, 0, nullptr, 0, "buffer_upload", &err), TSR_OK);
  EXPECT_EQ(CheckTransferArgs(&a, 0, nullptr, 4, "buffer_download", &err),
            TSR_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "buffer_download: NULL argument");
  EXPECT_EQ(CheckTransferArgs(&a, 8, host, 9, "buffer_upload", &err), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::strstr(err.message, "buffer_upload: range [8, +9)"), nullptr);
  EXPECT_EQ(CheckCopyArgs(&a, 8, &b, 0, 8, "fake backend", &err), TSR_OK);
  EXPECT_EQ(CheckCopyArgs(&a, 0, &c, 0, 8, "fake backend", &err), TSR_ERR_UNSUPPORTED);
  EXPECT_STREQ(err.message, "fake backend: buffer_copy across devices");
  EXPECT_EQ(CheckCopyArgs(&a, 0, &b, 4, 8, "fake backend", &err), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::strstr(err.message, "buffer_copy (destination)"), nullptr);
  EXPECT_EQ(CheckCopyArgs<FakeBuffer>(nullptr, 0, &b, 0, 0, "fake backend", &err),
            TSR_ERR_INVALID_ARGUMENT);
  void* mapped = nullptr;
  EXPECT_EQ(MapNotHostVisible(&a, &mapped, "fake backend", &err), TSR_ERR_UNSUPPORTED);
  EXPECT_STREQ(err.message, "fake backend: device buffers are not host-visible");
  FakeEvent* ev = nullptr;
  ASSERT_EQ((NewDeviceEvent<FakeEvent, FakeGpu>(&gpu, &ev, &err)), TSR_OK);
  EXPECT_EQ(ev->dev, &gpu);
  delete ev;
  tsr_buffer_type_props props{};
  EXPECT_EQ(DeviceBufferTypeProps(&gpu, 0, &props, "fake_device", 256, gpu.max_alloc, &err),
            TSR_OK);
  EXPECT_STREQ(props.name, "fake_device");
  EXPECT_EQ(props.alignment, 256u);
  EXPECT_EQ(props.max_size, 1024u);
  EXPECT_EQ(props.host_visible, 0);
  EXPECT_EQ(DeviceBufferTypeProps(&gpu, 1, &props, "fake_device", 256, 0, &err), TSR_ERR_NOT_FOUND);
}

TEST(BackendAbiTest, FailRespectsStructSize) {
  tsr_error err{};
  err.struct_size = sizeof(err);
  EXPECT_EQ(Fail(&err, TSR_ERR_NOT_FOUND, "nope"), TSR_ERR_NOT_FOUND);
  EXPECT_EQ(err.code, TSR_ERR_NOT_FOUND);
  EXPECT_STREQ(err.message, "nope");
  EXPECT_EQ(Fail(nullptr, TSR_ERR_INTERNAL, "x"), TSR_ERR_INTERNAL);
  EXPECT_EQ(CheckBufferRange(16, 8, 8, "upload", &err), TSR_OK);
  EXPECT_EQ(CheckBufferRange(16, 8, 9, "upload", &err), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::strstr(err.message, "upload: range [8, +9)"), nullptr);
}

constexpr char kTestBackend[] = "test backend";

tsr_status Throws(int kind, tsr_error* /*err*/) {
  if (kind == 0) throw std::bad_alloc();
  if (kind == 1) throw std::runtime_error("boom");
  throw 42;
}

TEST(BackendAbiTest, GuardedTurnsExceptionsIntoStatuses) {
  tsr_error err{};
  using G = Guarded<kTestBackend, Throws>;
  EXPECT_EQ(G::Call(0, &err), TSR_ERR_OUT_OF_MEMORY);
  EXPECT_STREQ(err.message, "test backend: out of host memory");
  EXPECT_EQ(G::Call(1, &err), TSR_ERR_INTERNAL);
  EXPECT_STREQ(err.message, "test backend: internal error: boom");
  EXPECT_EQ(G::Call(2, &err), TSR_ERR_INTERNAL);
  EXPECT_STREQ(err.message, "test backend: internal error (unknown exception)");
}

TEST(BackendAbiTest, PluginInitChecksTheHost) {
  const tsr_plugin_api api = NewApiTable("x", "X backend", "1.0");
  EXPECT_EQ(api.abi_major, TSR_ABI_MAJOR);
  EXPECT_STREQ(api.id, "x");
  tsr_error err{};
  EXPECT_EQ(PluginInit("x backend", nullptr, &api, &err), nullptr);
  EXPECT_STREQ(err.message, "x backend: host API is NULL");
  tsr_host_api host{};
  host.struct_size = sizeof(host);
  host.abi_major = TSR_ABI_MAJOR + 1;
  EXPECT_EQ(PluginInit("x backend", &host, &api, &err), nullptr);
  host.abi_major = TSR_ABI_MAJOR;
  EXPECT_EQ(PluginInit("x backend", &host, &api, &err), &api);
}

}  // namespace
}  // namespace tessera::backend
