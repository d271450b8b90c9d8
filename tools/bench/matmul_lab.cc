// matmul_lab: times the CPU plugin's MATMUL on a model's real matrix shapes, through the C ABI
// exactly as the host calls it, with nothing else in the way (no graph, no executor).
//
//   export TESSERA_CPU_PLUGIN=build/perf/lib/tessera/backends/libtessera_backend_cpu.so
//   build/perf/bin/matmul_lab --shape qwen2.5-0.5b --rows 1 --threads 2 --reps 5
//
// One "pass" runs every matmul of every layer plus the LM head once, each matrix its own
// buffer, so the weights come from memory as in a real decode step (the whole set is far
// larger than the last-level cache). Prints the median pass time, weight GB/s and GFLOP/s.
//
// --checkpoint FILE (bf16 weights): the real checkpoint's matrices instead of synthetic ones,
// placed by --place: `mmap` imports them at their addresses in a read-only file mapping of the
// safetensors file, as the engine binds them (page cache, the file's alignment); `mmap-huge`
// the same mapping 2 MiB aligned with MADV_HUGEPAGE (core/src/model/weight_map.h: pages read
// from disk through it come in 2 MiB folios; pages already cached keep theirs); `copy:OFF`
// copies each matrix into its own anonymous mapping at OFF bytes past a 4 KiB boundary;
// `huge:OFF` the same with MADV_HUGEPAGE. It separates where the weights live from the kernel.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tessera/plugin_api.h"
#include "tessera/quant_formats.h"

namespace {

struct Shape {
  const char* name;
  int64_t hidden, inter, layers, heads, kv_heads, head_dim, vocab;
};

constexpr Shape kShapes[] = {
    {"qwen2.5-0.5b", 896, 4864, 24, 14, 2, 64, 151936},
    {"llama-3.2-1b", 2048, 8192, 16, 32, 8, 64, 128256},
};

struct Options {
  const Shape* shape = &kShapes[0];
  int64_t rows = 1;
  int threads = 2;
  int reps = 5;
  bool head = true;
  std::string only;            // --only: one matmul kind (q k v o gate up down head), empty = all
  std::string dtype = "bf16";  // --dtype: weights bf16, q8 or q4 (int8 dot products, int8_dot=on)
  bool repack = false;         // --repack: weights imported as host memory, CPU option repack=on
  bool ab = false;             // --ab: with --repack, alternate passes against a device without
  std::string checkpoint;      // --checkpoint: a bf16 safetensors file whose matrices are used
  bool touch_x = false;        // --touch-x: a COPY rewrites x before each matmul (see below)
  bool copy_other = false;     // --copy-other: the same COPY into another tensor (control)
  std::string place = "mmap";  // --place: mmap | mmap-huge | copy:OFF | huge:OFF (the header)
  std::string plugin_b;        // --plugin-b: with --ab, A = TESSERA_CPU_PLUGIN, B = this plugin
  bool import_head = false;    // --import-head: the LM head imported too (packed under --repack)
  // --layout plain|engine|both: plain = every matmul of a layer back to back, outputs shared
  // by shape (the plugin groups sibling MATMULs of one x whose outputs do not overlap: {q, k},
  // {v, o, gate}, {up}, {down} for Llama-3.2-1B); engine = the decoder's job structure: a COPY
  // written by the calling thread (the op before each group: RMSNorm, attention, RMSNorm,
  // SwiGLU) gives {q, k, v}, {o}, {gate, up} and {down} their own x, each matmul its own
  // output; both = the two graphs alternated pass by pass on one device (A = plain, B =
  // engine).
  std::string layout = "plain";
};

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "matmul_lab: %s\n", why.c_str());
  std::exit(1);
}

tsr_error NewError() {
  tsr_error e{};
  e.struct_size = sizeof(e);
  return e;
}

void Check(tsr_status s, const tsr_error& e, const char* what) {
  if (s != TSR_OK) Die(std::string(what) + ": " + e.message);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) Die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--shape") {
      const std::string s = next();
      o.shape = nullptr;
      for (const Shape& sh : kShapes)
        if (s == sh.name) o.shape = &sh;
      if (o.shape == nullptr) Die("unknown shape " + s + " (qwen2.5-0.5b, llama-3.2-1b)");
    } else if (a == "--rows") {
      o.rows = std::atoll(next());
    } else if (a == "--threads") {
      o.threads = std::atoi(next());
    } else if (a == "--reps") {
      o.reps = std::atoi(next());
    } else if (a == "--no-head") {
      o.head = false;
    } else if (a == "--only") {
      o.only = next();
    } else if (a == "--repack") {
      o.repack = true;
    } else if (a == "--ab") {
      o.ab = true;
    } else if (a == "--plugin-b") {
      o.plugin_b = next();
    } else if (a == "--import-head") {
      o.import_head = true;
    } else if (a == "--checkpoint") {
      o.checkpoint = next();
    } else if (a == "--touch-x") {
      o.touch_x = true;
    } else if (a == "--copy-other") {
      o.copy_other = true;
    } else if (a == "--layout") {
      o.layout = next();
      if (o.layout != "plain" && o.layout != "engine" && o.layout != "both")
        Die("--layout plain|engine|both");
    } else if (a == "--place") {
      o.place = next();
    } else if (a == "--dtype") {
      o.dtype = next();
      if (o.dtype != "bf16" && o.dtype != "q8" && o.dtype != "q4") Die("--dtype bf16|q8|q4");
    } else {
      Die("unknown flag " + a +
          " (--shape S --rows M --threads T --reps R --no-head --only q|k|v|o|gate|up|down|head "
          "--dtype bf16|q8|q4 --repack --ab --plugin-b SO --import-head --checkpoint FILE --place "
          "mmap|mmap-huge|copy:OFF|huge:OFF --layout plain|engine|both)");
    }
  }
  return o;
}

// The plugin, one device, and tensors in its buffers.
class Lab {
 public:
  Lab(int threads, bool int8_dot, bool repack, const char* path = nullptr) : import_(repack) {
    if (path == nullptr) path = std::getenv("TESSERA_CPU_PLUGIN");
    if (path == nullptr) Die("set TESSERA_CPU_PLUGIN to libtessera_backend_cpu.so");
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) Die(dlerror());
    auto init = reinterpret_cast<tsr_plugin_init_fn>(dlsym(h, TSR_PLUGIN_INIT_SYMBOL));
    if (init == nullptr) Die("no init symbol");
    tsr_host_api host{};
    host.struct_size = sizeof(host);
    host.abi_major = TSR_ABI_MAJOR;
    host.abi_minor = TSR_ABI_MINOR;
    tsr_error err = NewError();
    api_ = init(&host, &err);
    if (api_ == nullptr) Die(err.message);
    const std::string t = std::to_string(threads);
    std::vector<tsr_option> opts = {{sizeof(tsr_option), "threads", t.c_str()}};
    if (int8_dot) opts.push_back({sizeof(tsr_option), "int8_dot", "on"});
    if (repack) opts.push_back({sizeof(tsr_option), "repack", "on"});
    Check(api_->create_context(opts.data(), opts.size(), &ctx_, &err), err, "create_context");
    Check(api_->device_open(ctx_, 0, &dev_, &err), err, "device_open");
  }
  // Closes the device (the CPU plugin prints its TESSERA_CPU_PROFILE table then); the buffers
  // go with the process.
  ~Lab() {
    api_->device_close(dev_);
    api_->destroy_context(ctx_);
  }
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  // A contiguous row-major tensor of `ne` (element size es) filled by repeating `pool`. Weights
  // (`weight`) are imported host memory under --repack, as the engine imports its mmap.
  int Add(tsr_dtype dtype, std::vector<int64_t> ne, size_t es, const std::vector<uint8_t>& pool,
          bool weight = false) {
    // Block-quantized rows: es is the bytes of a 32-value block (nb[-1] = 0, nb[-2] = row bytes).
    const bool blocks = dtype == TSR_DTYPE_Q8_B32 || dtype == TSR_DTYPE_Q4_B32;
    size_t bytes = es;
    for (size_t i = 0; i < ne.size(); ++i)
      bytes *= static_cast<size_t>(blocks && i + 1 == ne.size() ? ne[i] / TSR_QBLOCK : ne[i]);
    tsr_buffer* buf = nullptr;
    tsr_error err = NewError();
    std::vector<uint8_t> data(bytes);
    for (size_t i = 0; i < bytes; i += pool.size())
      std::memcpy(&data[i], pool.data(), std::min(pool.size(), bytes - i));
    if (import_ && weight) {
      Check(api_->buffer_import_host(dev_, data.data(), bytes, &buf, &err), err, "import");
      imported_.push_back(std::move(data));
    } else {
      Check(api_->buffer_alloc(dev_, 0, bytes, &buf, &err), err, "buffer_alloc");
      Check(api_->buffer_upload(buf, 0, data.data(), bytes, nullptr, &err), err, "buffer_upload");
    }
    tsr_tensor t{};
    t.struct_size = sizeof(t);
    t.dtype = dtype;
    t.ndim = static_cast<int32_t>(ne.size());
    size_t stride = es;
    for (int i = t.ndim - 1; i >= 0; --i) {
      t.ne[i] = ne[static_cast<size_t>(i)];
      const bool inner_blocks = blocks && i == t.ndim - 1;
      t.nb[i] = inner_blocks ? 0 : static_cast<int64_t>(stride);
      stride *= static_cast<size_t>(inner_blocks ? t.ne[i] / TSR_QBLOCK : t.ne[i]);
    }
    t.buffer = buf;
    tensors_.push_back(t);
    if (twin_ != nullptr) twin_->Add(dtype, ne, es, pool, weight);
    return static_cast<int>(tensors_.size()) - 1;
  }

  // A bf16 weight matrix (N, K) at `data` in host memory that outlives the lab, imported as the
  // engine imports its weights (one buffer per tensor, no copy).
  int AddHost(std::vector<int64_t> ne, const void* data) {
    const size_t bytes = static_cast<size_t>(ne[0] * ne[1]) * 2;
    tsr_buffer* buf = nullptr;
    tsr_error err = NewError();
    Check(api_->buffer_import_host(dev_, const_cast<void*>(data), bytes, &buf, &err), err,
          "import");
    tsr_tensor t{};
    t.struct_size = sizeof(t);
    t.dtype = TSR_DTYPE_BF16;
    t.ndim = 2;
    t.ne[0] = ne[0];
    t.ne[1] = ne[1];
    t.nb[1] = 2;
    t.nb[0] = 2 * ne[1];
    t.buffer = buf;
    tensors_.push_back(t);
    if (twin_ != nullptr) twin_->AddHost(ne, data);
    return static_cast<int>(tensors_.size()) - 1;
  }

  // Every later Add / AddMatmul is repeated on `twin` (same indices): an A/B pair of devices.
  void SetTwin(Lab* twin) { twin_ = twin; }

  // A COPY node src -> dst (same shape, f32).
  void AddCopy(int src, int dst) {
    if (twin_ != nullptr) twin_->AddCopy(src, dst);
    tsr_node n{};
    n.struct_size = sizeof(n);
    n.op = TSR_OP_COPY;
    n.n_inputs = 1;
    n.inputs[0] = src;
    n.output = dst;
    nodes_[graph_].push_back(n);
  }

  void AddMatmul(int x, int w, int out) {
    if (twin_ != nullptr) twin_->AddMatmul(x, w, out);
    tsr_node n{};
    n.struct_size = sizeof(n);
    n.op = TSR_OP_MATMUL;
    n.n_inputs = 2;
    n.inputs[0] = x;
    n.inputs[1] = w;
    n.output = out;
    nodes_[graph_].push_back(n);
  }

  // Later AddCopy / AddMatmul calls append to graph g (0 or 1; tensors are shared).
  void SetGraph(int g) { graph_ = g; }

  // Runs every node of graph g once (one execute call, as the executor issues a step); returns
  // seconds.
  double RunAll(int g = 0) {
    const std::vector<tsr_node>& nodes = nodes_[g];
    tsr_graph_view v{};
    v.struct_size = sizeof(v);
    v.n_tensors = static_cast<int32_t>(tensors_.size());
    v.tensors = tensors_.data();
    v.n_nodes = static_cast<int32_t>(nodes.size());
    v.nodes = nodes.data();
    std::vector<int32_t> ids(nodes.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    tsr_error err = NewError();
    const auto t0 = std::chrono::steady_clock::now();
    Check(api_->execute(dev_, &v, ids.data(), static_cast<int32_t>(ids.size()), nullptr, &err), err,
          "execute");
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  const tsr_plugin_api* api_ = nullptr;
  tsr_plugin_ctx* ctx_ = nullptr;
  tsr_device* dev_ = nullptr;
  std::vector<tsr_tensor> tensors_;
  std::vector<tsr_node> nodes_[2];
  int graph_ = 0;
  bool import_ = false;
  Lab* twin_ = nullptr;
  std::vector<std::vector<uint8_t>> imported_;  // host memory of imported weights
};

// The bf16 matrices of a safetensors file, found by name in its JSON header (a lab's parser:
// it looks for "name":{... "data_offsets":[begin,end] ...}).
class Checkpoint {
 public:
  Checkpoint(const std::string& path, const std::string& place) : place_(place) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) Die("cannot open " + path);
    struct stat st {};
    fstat(fd, &st);
    size_ = static_cast<size_t>(st.st_size);
    // As core/src/model/safetensors.cc maps it (mmap: HEAD e302fcc's way; mmap-huge: with
    // weight_map.h's alignment and advice).
    constexpr size_t kHuge = size_t{2} << 20;
    void* m = MAP_FAILED;
    if (place_ == "mmap-huge") {
      void* r = mmap(nullptr, size_ + kHuge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      const uintptr_t at = (reinterpret_cast<uintptr_t>(r) + kHuge - 1) & ~uintptr_t{kHuge - 1};
      if (r != MAP_FAILED)
        m = mmap(reinterpret_cast<void*>(at), size_, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
      if (m != MAP_FAILED) madvise(m, size_, MADV_HUGEPAGE);
    } else {
      m = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    }
    ::close(fd);
    if (m == MAP_FAILED) Die("mmap failed: " + path);
    base_ = static_cast<const uint8_t*>(m);
    uint64_t n = 0;
    std::memcpy(&n, base_, 8);
    header_.assign(reinterpret_cast<const char*>(base_ + 8), n);
    data_ = base_ + 8 + n;
    if (place_ != "mmap" && place_ != "mmap-huge") {
      const size_t colon = place_.find(':');
      off_ =
          colon == std::string::npos ? 0 : std::strtoull(place_.c_str() + colon + 1, nullptr, 10);
      huge_ = place_.rfind("huge", 0) == 0;
      if (place_.rfind("copy", 0) != 0 && !huge_) Die("--place mmap|mmap-huge|copy:OFF|huge:OFF");
    }
  }

  // Row-major (N, K) bf16 weights of tensor `name`, placed as --place says.
  const void* Matrix(const std::string& name, int64_t N, int64_t K) {
    const size_t at = header_.find("\"" + name + "\"");
    if (at == std::string::npos) Die("no tensor " + name);
    const size_t end = header_.find('}', at);
    const size_t d = header_.find("\"data_offsets\":[", at);
    if (d == std::string::npos || d > end) Die("no data_offsets for " + name);
    const char* q = header_.c_str() + d + 16;
    char* e = nullptr;
    const uint64_t b0 = std::strtoull(q, &e, 10);
    const uint64_t b1 = std::strtoull(e + 1, nullptr, 10);
    const size_t bytes = static_cast<size_t>(N * K) * 2;
    if (b1 - b0 != bytes) Die(name + ": not a bf16 matrix of the shape's size");
    const uint8_t* src = data_ + b0;
    if (place_.rfind("mmap", 0) == 0) return src;
    const size_t len = (bytes + off_ + (2u << 20)) & ~size_t{(2u << 20) - 1};
    void* m =
        mmap(nullptr, len + (2u << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) Die("anonymous mmap failed");
    // 2 MiB aligned, so huge pages can back it whole.
    uint8_t* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(m) + (2u << 20) - 1) &
                                            ~uintptr_t{(2u << 20) - 1});
    madvise(a, len, huge_ ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    std::memcpy(a + off_, src, bytes);
    return a + off_;
  }

  // Byte offset of the file's tensor data modulo 64 (the alignment of every row under mmap).
  int DataMisalign() const { return static_cast<int>(reinterpret_cast<uintptr_t>(data_) % 64); }

 private:
  std::string place_;
  const uint8_t* base_ = nullptr;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string header_;
  size_t off_ = 0;
  bool huge_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  const Shape& s = *o.shape;
  std::mt19937 rng(1);
  const bool quant = o.dtype != "bf16";
  Lab lab(o.threads, quant, o.repack);
  // --ab: the same matmuls on a device without repack, run alternately with `lab`'s (pairs of
  // adjacent passes see the same machine, which on a shared box drifts from minute to minute).
  std::unique_ptr<Lab> ref;
  if (o.ab) {
    // --plugin-b: two plugin builds with the same options (A/B of a kernel change in one
    // process, passes alternated; CPU time per pass beside wall time).
    ref = o.plugin_b.empty()
              ? std::make_unique<Lab>(o.threads, quant, false)
              : std::make_unique<Lab>(o.threads, quant, o.repack, o.plugin_b.c_str());
    lab.SetTwin(ref.get());
  }
  // Quantized blocks: an f16 scale of ~0.001 (0x1419), then random int8 values or nibbles.
  const tsr_dtype wt = o.dtype == "q8"   ? TSR_DTYPE_Q8_B32
                       : o.dtype == "q4" ? TSR_DTYPE_Q4_B32
                                         : TSR_DTYPE_BF16;
  const size_t wes = wt == TSR_DTYPE_Q8_B32   ? TSR_BLOCK_Q8_BYTES
                     : wt == TSR_DTYPE_Q4_B32 ? TSR_BLOCK_Q4_BYTES
                                              : 2;
  auto blocks = [&](size_t block_bytes) {
    std::vector<uint8_t> v(quant ? block_bytes * 30000 : 0);
    for (size_t i = 0; i < v.size(); ++i) {
      const size_t at = i % block_bytes;
      v[i] = at == 0 ? 0x19 : at == 1 ? 0x14 : static_cast<uint8_t>(rng());
    }
    return v;
  };
  const std::vector<uint8_t> qblocks = blocks(wes);
  // The engine's --quantize keeps the LM head (the tied embedding) in Q8 for q4 too.
  const std::vector<uint8_t> qhead = blocks(TSR_BLOCK_Q8_BYTES);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<uint8_t> bf16(1 << 20), f32(1 << 20);
  for (size_t i = 0; i < bf16.size(); i += 2) {
    float v = dist(rng);
    uint32_t u;
    std::memcpy(&u, &v, 4);
    const uint16_t b = static_cast<uint16_t>(u >> 16);
    std::memcpy(&bf16[i], &b, 2);
  }
  for (size_t i = 0; i < f32.size(); i += 4) {
    const float v = dist(rng) * 50;
    std::memcpy(&f32[i], &v, 4);
  }
  const int64_t M = o.rows, H = s.hidden, I = s.inter, q = s.heads * s.head_dim,
                kv = s.kv_heads * s.head_dim;
  // (N, K) of each matmul of one layer: q, k, v, o, gate, up, down.
  const int64_t mats[7][2] = {{q, H}, {kv, H}, {kv, H}, {H, q}, {I, H}, {I, H}, {H, I}};
  const char* names[7] = {"q", "k", "v", "o", "gate", "up", "down"};
  const char* tensor_names[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                 "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                 "mlp.down_proj"};
  std::unique_ptr<Checkpoint> ckpt;
  if (!o.checkpoint.empty()) {
    if (quant || (o.ab && o.plugin_b.empty()))
      Die("--checkpoint takes bf16 weights only, --ab only with --plugin-b");
    ckpt = std::make_unique<Checkpoint>(o.checkpoint, o.place);
    std::printf("checkpoint %s, place %s, file data at %d mod 64\n", o.checkpoint.c_str(),
                o.place.c_str(), ckpt->DataMisalign());
  }
  // Activations are shared across layers (they live in cache in a real step too); weights are
  // not. The LM head runs on one row, as the decoder graph asks for the last row's logits only.
  std::map<int64_t, int> xs, outs;
  auto x_for = [&](int64_t k) {
    if (!xs.count(k)) xs[k] = lab.Add(TSR_DTYPE_F32, {M, k}, 4, f32);
    return xs[k];
  };
  auto out_for = [&](int64_t n) {
    if (!outs.count(n)) outs[n] = lab.Add(TSR_DTYPE_F32, {M, n}, 4, f32);
    return outs[n];
  };
  double params = 0, head_params = 0, flops = 0;  // params: the layers' matmuls
  const bool plain = o.layout != "engine", engine = o.layout != "plain";
  // --layout engine: x of each group written by the calling thread just before it (COPY from a
  // source the graph never writes), as the decoder's RMSNorm / attention / SwiGLU do.
  std::map<int64_t, int> srcs, xe, oute;
  auto fresh_x = [&](int64_t k, int slot) {
    const int64_t key = k * 4 + slot;
    if (!srcs.count(k)) srcs[k] = lab.Add(TSR_DTYPE_F32, {M, k}, 4, f32);
    if (!xe.count(key)) xe[key] = lab.Add(TSR_DTYPE_F32, {M, k}, 4, f32);
    lab.AddCopy(srcs[k], xe[key]);
    return xe[key];
  };
  for (int64_t l = 0; l < s.layers; ++l) {
    int w_of[7] = {-1, -1, -1, -1, -1, -1, -1};
    for (int i = 0; i < 7; ++i) {
      const auto& nk = mats[i];
      if (!o.only.empty() && o.only != names[i]) continue;
      w_of[i] =
          ckpt != nullptr
              ? lab.AddHost({nk[0], nk[1]}, ckpt->Matrix("model.layers." + std::to_string(l) + "." +
                                                             tensor_names[i] + ".weight",
                                                         nk[0], nk[1]))
              : lab.Add(wt, {nk[0], nk[1]}, wes, quant ? qblocks : bf16, /*weight=*/true);
      params += static_cast<double>(nk[0] * nk[1]);
      flops += 2.0 * static_cast<double>(nk[0] * nk[1] * M);
    }
    if (plain) {
      lab.SetGraph(0);
      for (int i = 0; i < 7; ++i) {
        if (w_of[i] < 0) continue;
        const auto& nk = mats[i];
        // --touch-x: the calling thread writes x just before the matmul, as the op before a
        // matmul does in the engine (the worker then reads x from the other core's cache).
        if (o.touch_x || o.copy_other)
          lab.AddCopy(lab.Add(TSR_DTYPE_F32, {M, nk[1]}, 4, f32),
                      o.touch_x ? x_for(nk[1]) : lab.Add(TSR_DTYPE_F32, {M, nk[1]}, 4, f32));
        lab.AddMatmul(x_for(nk[1]), w_of[i], out_for(nk[0]));
      }
    }
    if (engine) {
      lab.SetGraph(o.layout == "both" ? 1 : 0);
      // Groups {q, k, v}, {o}, {gate, up}, {down}, each after its own x is written.
      const int group_of[7] = {0, 0, 0, 1, 2, 2, 3};
      int x = -1;
      for (int i = 0; i < 7; ++i) {
        if (w_of[i] < 0) continue;
        const auto& nk = mats[i];
        if (i == 0 || group_of[i] != group_of[i - 1] || x < 0) x = fresh_x(nk[1], group_of[i]);
        if (!oute.count(i)) oute[i] = lab.Add(TSR_DTYPE_F32, {M, nk[0]}, 4, f32);
        lab.AddMatmul(x, w_of[i], oute[i]);  // each its own output, as in the decoder
      }
    }
  }
  if (o.head && (o.only.empty() || o.only == "head")) {
    const int x = lab.Add(TSR_DTYPE_F32, {1, H}, 4, f32);
    const int w =
        quant ? lab.Add(TSR_DTYPE_Q8_B32, {s.vocab, H}, TSR_BLOCK_Q8_BYTES, qhead, o.import_head)
        : ckpt != nullptr ? lab.AddHost({s.vocab, H}, ckpt->Matrix("model.embed_tokens.weight",
                                                                   s.vocab, H))  // tied
                          : lab.Add(TSR_DTYPE_BF16, {s.vocab, H}, 2, bf16, /*weight=*/true);
    const int out = lab.Add(TSR_DTYPE_F32, {1, s.vocab}, 4, f32);
    lab.SetGraph(0);
    lab.AddMatmul(x, w, out);
    if (o.layout == "both") {
      lab.SetGraph(1);
      lab.AddMatmul(x, w, out);
    }
    head_params = static_cast<double>(s.vocab * H);
    flops += 2.0 * head_params;
  }
  lab.RunAll();  // warm-up: page faults, scratch growth (and the repacking)
  const bool two_layouts = o.layout == "both";
  if (two_layouts) {
    if (ref != nullptr) Die("--layout both takes no --ab");
    lab.RunAll(1);
  }
  if (ckpt != nullptr) {
    // How much of the file the kernel maps with 2 MiB entries (its page cache holds 2 MiB
    // folios there): the whole process's FilePmdMapped, which only this mapping feeds.
    FILE* f = std::fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    while (f != nullptr && std::fgets(line, sizeof line, f) != nullptr)
      if (std::strncmp(line, "FilePmdMapped:", 14) == 0) std::printf("after warm-up: %s", line);
    if (f != nullptr) std::fclose(f);
  }
  if (ref != nullptr || two_layouts) {
    if (ref != nullptr) ref->RunAll();
    // A and B: without / with repack, or (--plugin-b) TESSERA_CPU_PLUGIN / the --plugin-b build,
    // or (--layout both) the plain / the engine layout on one device.
    Lab* la = two_layouts ? &lab : o.plugin_b.empty() ? ref.get() : &lab;
    Lab* lb = two_layouts ? &lab : o.plugin_b.empty() ? &lab : ref.get();
    auto cpu_now = [] {
      timespec c;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c);
      return static_cast<double>(c.tv_sec) + 1e-9 * static_cast<double>(c.tv_nsec);
    };
    std::vector<double> ta, tb, ca, cb, ratio, cratio;
    for (int r = 0; r < o.reps; ++r) {
      const bool a_first = r % 2 == 0;
      for (int k = 0; k < 2; ++k) {
        const bool is_a = (k == 0) == a_first;
        const double c0 = cpu_now();
        const double t = (is_a ? la : lb)->RunAll(two_layouts && !is_a ? 1 : 0);
        (is_a ? ta : tb).push_back(t);
        (is_a ? ca : cb).push_back(cpu_now() - c0);
      }
      ratio.push_back(ta.back() / tb.back());
      cratio.push_back(ca.back() / cb.back());
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    const char* na = two_layouts ? "plain" : o.plugin_b.empty() ? "without repack" : "A";
    const char* nb = two_layouts ? "engine layout" : o.plugin_b.empty() ? "with" : "B";
    std::printf(
        "%s rows=%lld threads=%d A/B: pass %.2f ms %s (min %.2f), %.2f ms %s (min %.2f); median "
        "speedup of adjacent pairs %.3f; CPU ms a pass %.2f / %.2f, paired %.3f\n",
        s.name, static_cast<long long>(M), o.threads, median(ta) * 1e3, na,
        *std::min_element(ta.begin(), ta.end()) * 1e3, median(tb) * 1e3, nb,
        *std::min_element(tb.begin(), tb.end()) * 1e3, median(ratio), median(ca) * 1e3,
        median(cb) * 1e3, median(cratio));
    return 0;
  }
  // Process CPU time as well as wall time: on a shared machine GFLOP per CPU-second (per core)
  // measures the kernel, wall time measures the kernel plus whoever else runs.
  std::vector<double> t;
  timespec c0, c1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  for (int r = 0; r < o.reps; ++r) t.push_back(lab.RunAll());
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  const double cpu = static_cast<double>(c1.tv_sec - c0.tv_sec) +
                     1e-9 * static_cast<double>(c1.tv_nsec - c0.tv_nsec);
  const double wbytes =
      quant ? (params * static_cast<double>(wes) + head_params * TSR_BLOCK_Q8_BYTES) / TSR_QBLOCK
            : (params + head_params) * 2;
  // The mean counts every pass, the median leaves out the ones another tenant (or, under
  // SCHED_FIFO, the kernel's RT throttling: 50 ms a second per CPU) interrupted.
  double mean = 0;
  for (double x : t) mean += x / static_cast<double>(t.size());
  std::sort(t.begin(), t.end());
  const double med = t[t.size() / 2];
  std::printf(
      "%s rows=%lld threads=%d: pass %.2f ms (min %.2f, max %.2f, mean %.2f), %.2f GB/s weights, "
      "%.1f GFLOP/s, "
      "%.1f GFLOP per CPU-second, %.1f GB of weights per CPU-second\n",
      s.name, static_cast<long long>(M), o.threads, med * 1e3, t.front() * 1e3, t.back() * 1e3,
      mean * 1e3, wbytes / med / 1e9, flops / med / 1e9, flops * o.reps / cpu / 1e9,
      wbytes * o.reps / cpu / 1e9);
  return 0;
}
