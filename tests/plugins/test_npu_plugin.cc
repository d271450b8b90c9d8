// A compile-style test plugin: it behaves like a small NPU that claims groups of ADD, MUL, SCALE,
// SILU and f32 MATMUL nodes, receives each group as serialized GraphProto bytes, "compiles" it
// into its own node list with fixed shapes, runs it on the host, and round-trips executables
// through blobs. It exports tsr_test_npu_compile_count() so tests can prove a cached blob was
// used instead of compiling again.
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graph.pb.h"
#include "host_buffers.h"

struct tsr_plugin_ctx {};
struct tsr_device {};

namespace {

tsr_plugin_ctx g_ctx;
tsr_device g_dev;
int g_compiles = 0;
constexpr char kMagic[] = "TNPU1";

bool Claimable(const tsr_graph_view* g, const tsr_node& n) {
  switch (n.op) {
    case TSR_OP_ADD:
    case TSR_OP_MUL:
    case TSR_OP_SCALE:
    case TSR_OP_SILU:
    case TSR_OP_MATMUL: break;
    default: return false;
  }
  for (int i = 0; i < n.n_inputs; ++i) {
    if (n.inputs[i] < 0) return false;
    if (g->tensors[n.inputs[i]].dtype != TSR_DTYPE_F32) return false;
  }
  if ((n.op == TSR_OP_ADD || n.op == TSR_OP_MUL) &&
      tp_numel(&g->tensors[n.inputs[0]]) != tp_numel(&g->tensors[n.inputs[1]]))
    return false;
  if (n.op == TSR_OP_MATMUL && (n.n_inputs != 2 || g->tensors[n.inputs[1]].ndim != 2)) return false;
  return true;
}

}  // namespace

struct tsr_executable {
  tessera::wire::GraphProto proto;
  std::vector<tsr_buffer*> weights;
  std::map<std::string, std::vector<float>> scratch;  // intermediates, sized at compile time
  std::map<std::string, int64_t> numel;
};

namespace {

tsr_status Build(const void* bytes, size_t size, tsr_buffer* const* weights, int32_t n_weights,
                 tsr_executable** out, tsr_error* err) {
  auto exe = std::make_unique<tsr_executable>();
  if (!exe->proto.ParseFromArray(bytes, static_cast<int>(size))) {
    tp_set_error(err, TSR_ERR_INVALID_ARGUMENT, "not a GraphProto");
    return TSR_ERR_INVALID_ARGUMENT;
  }
  if (exe->proto.opset_major() != TSR_ABI_MAJOR) {
    tp_set_error(err, TSR_ERR_UNSUPPORTED, "opset major mismatch");
    return TSR_ERR_UNSUPPORTED;
  }
  if (n_weights != exe->proto.weights_size()) {
    tp_set_error(err, TSR_ERR_INVALID_ARGUMENT, "weight count mismatch");
    return TSR_ERR_INVALID_ARGUMENT;
  }
  exe->weights.assign(weights, weights + n_weights);
  auto count = [](const tessera::wire::TensorProto& t) {
    int64_t n = 1;
    for (int64_t d : t.shape()) n *= d;
    return n;
  };
  for (const auto& t : exe->proto.intermediates()) exe->scratch[t.name()].assign(count(t), 0.f);
  for (const auto& t : exe->proto.inputs()) exe->numel[t.name()] = count(t);
  for (const auto& t : exe->proto.outputs()) exe->numel[t.name()] = count(t);
  for (const auto& t : exe->proto.intermediates()) exe->numel[t.name()] = count(t);
  *out = exe.release();
  return TSR_OK;
}

tsr_status Run(tsr_executable* exe, const tsr_tensor* ins, int32_t n_in, const tsr_tensor* outs,
               int32_t n_out, tsr_error* err) {
  const auto& p = exe->proto;
  if (n_in != p.inputs_size() || n_out != p.outputs_size()) {
    tp_set_error(err, TSR_ERR_INVALID_ARGUMENT, "input/output count mismatch");
    return TSR_ERR_INVALID_ARGUMENT;
  }
  std::map<std::string, float*> ptr;
  for (int i = 0; i < n_in; ++i) ptr[p.inputs(i).name()] = tp_f32(&ins[i]);
  for (int i = 0; i < n_out; ++i) ptr[p.outputs(i).name()] = tp_f32(&outs[i]);
  for (int i = 0; i < p.weights_size(); ++i)
    ptr[p.weights(i).tensor().name()] =
        reinterpret_cast<float*>(exe->weights[i]->data + p.weights(i).offset());
  for (auto& [name, v] : exe->scratch) ptr[name] = v.data();
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& w : p.weights())
    shapes[w.tensor().name()].assign(w.tensor().shape().begin(), w.tensor().shape().end());
  for (const auto& n : p.nodes()) {
    float* y = ptr[n.output()];
    const float* a = ptr[n.inputs(0)];
    int64_t len = exe->numel[n.output()];
    switch (n.op()) {
      case TSR_OP_ADD: {
        const float* b = ptr[n.inputs(1)];
        for (int64_t i = 0; i < len; ++i) y[i] = a[i] + b[i];
        break;
      }
      case TSR_OP_MUL: {
        const float* b = ptr[n.inputs(1)];
        for (int64_t i = 0; i < len; ++i) y[i] = a[i] * b[i];
        break;
      }
      case TSR_OP_SCALE:
        for (int64_t i = 0; i < len; ++i) y[i] = a[i] * n.fparams(0) + n.fparams(1);
        break;
      case TSR_OP_SILU:
        for (int64_t i = 0; i < len; ++i) y[i] = a[i] / (1.f + std::exp(-a[i]));
        break;
      case TSR_OP_MATMUL: {
        const auto& ws = shapes[n.inputs(1)];
        const float* w = ptr[n.inputs(1)];
        int64_t nn = ws[0], k = ws[1], m = len / nn;
        for (int64_t r = 0; r < m; ++r)
          for (int64_t c = 0; c < nn; ++c) {
            double acc = 0;
            for (int64_t j = 0; j < k; ++j) acc += static_cast<double>(a[r * k + j]) * w[c * k + j];
            y[r * nn + c] = static_cast<float>(acc);
          }
        break;
      }
      default: tp_set_error(err, TSR_ERR_INTERNAL, "op not compiled"); return TSR_ERR_INTERNAL;
    }
  }
  return TSR_OK;
}

tsr_plugin_api MakeApi() {
  tsr_plugin_api a{};
  a.struct_size = sizeof(a);
  a.abi_major = TSR_ABI_MAJOR;
  a.abi_minor = TSR_ABI_MINOR;
  a.id = "testnpu";
  a.name = "Tessera test NPU plugin";
  a.version = "test";
  a.create_context = [](const tsr_option*, size_t, tsr_plugin_ctx** out, tsr_error*) {
    *out = &g_ctx;
    return TSR_OK;
  };
  a.destroy_context = [](tsr_plugin_ctx*) {};
  a.absence_reason = [](tsr_plugin_ctx*) { return ""; };
  a.device_count = [](tsr_plugin_ctx*, int32_t* n, tsr_error*) {
    *n = 1;
    return TSR_OK;
  };
  a.device_props = [](tsr_plugin_ctx*, int32_t, tsr_device_props* p, tsr_error*) {
    p->name = "Test NPU";
    p->description = "compile-style test plugin";
    p->kind = TSR_DEVICE_NPU;
    p->caps = TSR_CAP_STATIC_SHAPES;
    p->exec_styles = TSR_EXEC_COMPILE;
    return TSR_OK;
  };
  a.device_open = [](tsr_plugin_ctx*, int32_t, tsr_device** out, tsr_error*) {
    *out = &g_dev;
    return TSR_OK;
  };
  a.device_close = [](tsr_device*) {};
  a.buffer_type_count = tp_buffer_type_count;
  a.buffer_type_props = tp_buffer_type_props;
  a.buffer_alloc = tp_buffer_alloc;
  a.buffer_import_host = tp_buffer_import_host;
  a.buffer_free = tp_buffer_free;
  a.buffer_map = tp_buffer_map;
  a.buffer_upload = tp_upload;
  a.buffer_download = tp_download;
  a.buffer_copy = tp_copy_unsupported;
  a.claim = [](tsr_device*, const tsr_graph_view* g, tsr_claim_result* r, tsr_error*) {
    int32_t group = -1;
    bool prev = false;
    for (int32_t i = 0; i < g->n_nodes; ++i) {
      bool c = Claimable(g, g->nodes[i]);
      if (c && !prev) ++group;
      r->group_of_node[i] = c ? group : -1;
      prev = c;
    }
    r->n_groups = group + 1;
    return TSR_OK;
  };
  a.compile = [](tsr_device*, const void* b, size_t n, tsr_buffer* const* w, int32_t nw,
                 tsr_executable** out, tsr_error* err) {
    ++g_compiles;
    return Build(b, n, w, nw, out, err);
  };
  a.run_executable = Run;
  a.executable_free = [](tsr_executable* e) { delete e; };
  a.compat_string = [](tsr_device*) { return "testnpu-1"; };
  a.serialize_executable = [](tsr_executable* e, void** blob, size_t* size, tsr_error*) {
    std::string body = e->proto.SerializeAsString();
    *size = sizeof(kMagic) + body.size();
    auto* mem = static_cast<char*>(std::malloc(*size));
    std::memcpy(mem, kMagic, sizeof(kMagic));
    std::memcpy(mem + sizeof(kMagic), body.data(), body.size());
    *blob = mem;
    return TSR_OK;
  };
  a.free_blob = [](void* b) { std::free(b); };
  a.deserialize_executable = [](tsr_device*, const void* blob, size_t size, tsr_buffer* const* w,
                                int32_t nw, tsr_executable** out, tsr_error* err) {
    if (size < sizeof(kMagic) || std::memcmp(blob, kMagic, sizeof(kMagic)) != 0) {
      tp_set_error(err, TSR_ERR_INVALID_ARGUMENT, "not a test NPU blob");
      return TSR_ERR_INVALID_ARGUMENT;
    }
    return Build(static_cast<const char*>(blob) + sizeof(kMagic), size - sizeof(kMagic), w, nw, out,
                 err);
  };
  return a;
}

tsr_plugin_api g_api = MakeApi();

}  // namespace

extern "C" {
TSR_PLUGIN_EXPORT const tsr_plugin_api* tsr_plugin_init(const tsr_host_api*, tsr_error*) {
  return &g_api;
}
TSR_PLUGIN_EXPORT int tsr_test_npu_compile_count(void) {
  return g_compiles;
}
}
