#include "tessera/core/executor.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include "graph_serialize.h"
#include "tessera/core/model/quantize.h"
#include "tessera/core/model/safetensors.h"

namespace tessera {
namespace {

// Converts n values between the float dtypes a boundary can see (f32, f16, bf16).
Status ConvertFloats(const void* src, DType from, void* dst, DType to, int64_t n) {
  if (from == to) {
    std::memcpy(dst, src, static_cast<size_t>(n * ElementSize(from)));
    return OkStatus();
  }
  auto load = [&](int64_t i) {
    switch (from) {
      case DType::kF16: return F16BitsToF32(static_cast<const uint16_t*>(src)[i]);
      case DType::kBF16: return BF16BitsToF32(static_cast<const uint16_t*>(src)[i]);
      default: return static_cast<const float*>(src)[i];
    }
  };
  if (to == DType::kF16) {
    for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = F32ToF16Bits(load(i));
  } else if (to == DType::kF32) {
    for (int64_t i = 0; i < n; ++i) static_cast<float*>(dst)[i] = load(i);
  } else {
    return Internal(std::string("no conversion from ") + DTypeName(from) + " to " + DTypeName(to));
  }
  return OkStatus();
}

// `desc` as it is stored on a device: dtype `dt`, dim 0 padded to `rows` and dim 1 to `cols`
// (0 = not padded).
TensorDesc StoredDesc(const TensorDesc& desc, DType dt, int64_t rows, int64_t cols = 0) {
  TensorDesc d = desc;
  d.dtype = dt;
  if (rows > 0 && !d.shape.empty()) d.shape[0] = std::max(d.shape[0], rows);
  if (cols > 0 && d.shape.size() >= 2) d.shape[1] = std::max(d.shape[1], cols);
  d.strides = ContiguousStrides(dt, d.shape);
  return d;
}

// Scales a byte stride or offset of `from` elements to `to` elements.
int64_t ScaleBytes(int64_t bytes, DType from, DType to) {
  if (from == to || IsQuantized(from)) return bytes;
  return bytes / ElementSize(from) * ElementSize(to);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ExecutionContext

struct ExecutionContext::CompiledEntry {
  Device* device = nullptr;
  tsr_executable* exe = nullptr;
  ~CompiledEntry() {
    if (exe && device->plugin().api().executable_free) device->plugin().api().executable_free(exe);
  }
};

ExecutionContext::ExecutionContext(std::vector<Device*> devices, ExecutionOptions options)
    : devices_(std::move(devices)), options_(std::move(options)) {
  arenas_.resize(devices_.size());
  arena_generation_.resize(devices_.size());
}

ExecutionContext::~ExecutionContext() {
  compiled_.clear();  // executables reference weights: free them first
}

void ExecutionContext::BindWeight(const std::string& name, const void* data, uint64_t bytes) {
  weights_host_[name] = {data, bytes};
}

void ExecutionContext::BindState(const std::string& name, int32_t device, DeviceBuffer* buffer,
                                 uint64_t offset) {
  states_[name] = {device, buffer, offset};
}

int64_t ExecutionContext::arena_bytes(int32_t d) const {
  return arenas_[d] ? static_cast<int64_t>(arenas_[d]->size()) : 0;
}

DType ExecutionContext::StorageDType(int32_t d, DType t) const {
  const bool no_f32 = (devices_[d]->props().caps & TSR_CAP_NO_F32) != 0;
  return no_f32 && (t == DType::kF32 || t == DType::kBF16) ? DType::kF16 : t;
}

StatusOr<DeviceBuffer*> ExecutionContext::WeightOn(const std::string& name, DType dtype,
                                                   int32_t device) {
  auto key = std::make_pair(name, device);
  auto it = weights_dev_.find(key);
  if (it != weights_dev_.end()) return it->second.get();
  auto host = weights_host_.find(name);
  if (host == weights_host_.end()) return NotFound("weight '" + name + "' is not bound");
  Device* dev = devices_[device];
  const DType stored = StorageDType(device, dtype);
  if (stored != dtype) {
    // An f16-only device: one converted copy, uploaded once (at load, never per step).
    const int64_t n = static_cast<int64_t>(host->second.bytes) / ElementSize(dtype);
    std::vector<uint16_t> converted(static_cast<size_t>(n));
    TSR_RETURN_IF_ERROR(ConvertFloats(host->second.data, dtype, converted.data(), stored, n));
    TSR_ASSIGN_OR_RETURN(auto buf, dev->Alloc(static_cast<uint64_t>(n) * 2));
    TSR_RETURN_IF_ERROR(dev->Upload(*buf, 0, converted.data(), static_cast<uint64_t>(n) * 2));
    DeviceBuffer* raw = buf.get();
    weights_dev_[key] = std::move(buf);
    return raw;
  }
  // Zero-copy where the device can read host memory; else one upload.
  auto imported = dev->ImportHost(const_cast<void*>(host->second.data), host->second.bytes);
  std::unique_ptr<DeviceBuffer> buf;
  if (imported.ok()) {
    buf = std::move(imported).value();
  } else {
    TSR_ASSIGN_OR_RETURN(buf, dev->Alloc(host->second.bytes));
    TSR_RETURN_IF_ERROR(dev->Upload(*buf, 0, host->second.data, host->second.bytes));
  }
  DeviceBuffer* raw = buf.get();
  weights_dev_[key] = std::move(buf);
  return raw;
}

StatusOr<DeviceBuffer*> ExecutionContext::ArenaOn(int32_t device, int64_t bytes) {
  auto& arena = arenas_[device];
  if (!arena || static_cast<int64_t>(arena->size()) < bytes) {
    arena.reset();
    TSR_ASSIGN_OR_RETURN(arena, devices_[device]->Alloc(std::max<int64_t>(bytes, 1)));
    ++arena_generation_[device];
  }
  return arena.get();
}

StatusOr<tsr_executable*> ExecutionContext::CompiledFor(int32_t device, const std::string& proto,
                                                        std::vector<tsr_buffer*> weights) {
  Device* dev = devices_[device];
  const tsr_plugin_api& api = dev->plugin().api();
  const char* compat = api.compat_string ? api.compat_string(dev->handle()) : "";
  std::string key = dev->label() + "|" + (compat ? compat : "") + "|" +
                    std::to_string(std::hash<std::string>{}(proto)) + "|" +
                    std::to_string(proto.size());
  auto it = compiled_.find(key);
  if (it != compiled_.end()) {
    ++compile_stats_.memory_hits;
    return it->second->exe;
  }
  auto entry = std::make_unique<CompiledEntry>();
  entry->device = dev;
  tsr_error err{};
  err.struct_size = sizeof(err);
  std::string blob_path;
  if (!options_.compile_cache_dir.empty() && api.deserialize_executable &&
      api.serialize_executable) {
    std::ostringstream name;
    name << std::hex << std::hash<std::string>{}(key) << ".blob";
    blob_path = (std::filesystem::path(options_.compile_cache_dir) / name.str()).string();
    std::ifstream in(blob_path, std::ios::binary);
    if (in) {
      std::string blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (api.deserialize_executable(dev->handle(), blob.data(), blob.size(), weights.data(),
                                     static_cast<int32_t>(weights.size()), &entry->exe,
                                     &err) == TSR_OK) {
        ++compile_stats_.loaded_blobs;
      }
    }
  }
  if (!entry->exe) {
    if (!api.compile)
      return Unimplemented(dev->label() + ": compile-style device without compile()");
    TSR_RETURN_IF_ERROR(
        dev->Check(api.compile(dev->handle(), proto.data(), proto.size(), weights.data(),
                               static_cast<int32_t>(weights.size()), &entry->exe, &err),
                   err));
    ++compile_stats_.compiled;
    if (!blob_path.empty()) {
      void* blob = nullptr;
      size_t size = 0;
      if (api.serialize_executable(entry->exe, &blob, &size, &err) == TSR_OK) {
        std::error_code ec;
        std::filesystem::create_directories(options_.compile_cache_dir, ec);
        std::string tmp = blob_path + ".tmp";
        std::ofstream out(tmp, std::ios::binary);
        out.write(static_cast<const char*>(blob), static_cast<std::streamsize>(size));
        out.close();
        if (out) std::filesystem::rename(tmp, blob_path, ec);
        if (api.free_blob) api.free_blob(blob);
      }
    }
  }
  tsr_executable* exe = entry->exe;
  compiled_[key] = std::move(entry);
  return exe;
}

// ---------------------------------------------------------------------------------------------
// Executable

Executable::~Executable() = default;

StatusOr<std::unique_ptr<Executable>> Executable::Prepare(ExecutionContext& ctx,
                                                          const Graph& graph) {
  TSR_RETURN_IF_ERROR(graph.Validate());
  auto exe = std::unique_ptr<Executable>(new Executable(ctx, graph));
  ScheduleOptions sopt;
  sopt.state_device.assign(graph.num_tensors(), -1);
  for (TensorId t = 0; t < graph.num_tensors(); ++t) {
    const TensorDesc& d = graph.tensor(t);
    if (d.kind != TensorKind::kState) continue;
    auto it = ctx.states_.find(d.name);
    if (it == ctx.states_.end()) return NotFound("state '" + d.name + "' is not bound");
    sopt.state_device[t] = it->second.device;
  }
  TSR_ASSIGN_OR_RETURN(exe->schedule_, ScheduleGraph(graph, ctx.devices(), sopt));
  exe->PlanBuckets();
  TSR_RETURN_IF_ERROR(exe->PlanArenas());
  TSR_RETURN_IF_ERROR(exe->BuildViews());
  for (size_t i = 0; i < exe->schedule_.steps.size(); ++i)
    if (exe->schedule_.steps[i].kind == Step::Kind::kCompiled)
      TSR_RETURN_IF_ERROR(exe->PrepareCompiled(i));
  return exe;
}

void Executable::PlanBuckets() {
  const size_t n_dev = ctx_.devices().size();
  bucket_rows_.assign(n_dev, std::vector<int64_t>(graph_.num_tensors(), 0));
  bucket_cols_.assign(n_dev, std::vector<int64_t>(graph_.num_tensors(), 0));
  for (size_t i = 0; i < schedule_.steps.size(); ++i) {
    const Step& st = schedule_.steps[i];
    if (st.kind != Step::Kind::kCompiled ||
        !(ctx_.devices()[st.device]->props().caps & TSR_CAP_STATIC_SHAPES))
      continue;
    std::map<TensorId, int64_t> cols;
    std::map<TensorId, int64_t> rows = BucketRows(graph_, st.nodes, &cols);
    if (rows.empty()) continue;  // not row-wise: compiled for its exact shapes
    for (const auto& [t, width] : cols) {
      int64_t& c = bucket_cols_[st.device][graph_.Root(t)];
      c = std::max(c, width);
    }
    step_cols_[i] = std::move(cols);
    for (const auto& [t, bucket] : rows) {
      int64_t& b = bucket_rows_[st.device][graph_.Root(t)];
      b = std::max(b, bucket);
    }
    // Padded KV_WRITE slots are -1 (skip): padding rows must never land in the cache.
    for (int32_t n : st.nodes)
      if (graph_.nodes()[n].op == TSR_OP_KV_WRITE)
        pad_skip_.insert(graph_.Root(graph_.nodes()[n].inputs[2]));
    step_bucket_[i] = std::move(rows);
  }
  KeepUploadedWidths();
}

void Executable::KeepUploadedWidths() {
  // A padded width changes the row stride, so it is kept only for graph inputs that Run uploads
  // straight to the device (no copy step moves them) and that every step there reads padded.
  std::set<std::pair<int32_t, TensorId>> bad;
  for (size_t i = 0; i < schedule_.steps.size(); ++i) {
    const Step& st = schedule_.steps[i];
    if (st.kind == Step::Kind::kCopy) {
      bad.insert({st.device, st.tensor});
      bad.insert({st.from_device, st.tensor});
      continue;
    }
    auto cols = step_cols_.find(i);
    for (int32_t n : st.nodes)
      for (TensorId t : graph_.nodes()[n].inputs) {
        if (t == kNoTensor) continue;
        const TensorId r = graph_.Root(t);
        if (bucket_cols_[st.device][r] <= 0) continue;
        if (graph_.tensor(r).kind != TensorKind::kInput || schedule_.home[r] != st.device ||
            cols == step_cols_.end() || !cols->second.count(t))
          bad.insert({st.device, r});
      }
  }
  for (const auto& [d, r] : bad) bucket_cols_[d][r] = 0;
  for (auto& [i, cols] : step_cols_)
    for (auto it = cols.begin(); it != cols.end();)
      it = bucket_cols_[schedule_.steps[i].device][graph_.Root(it->first)] > 0 ? std::next(it)
                                                                               : cols.erase(it);
}

Status Executable::FillPadding(int32_t d, TensorId root, const int32_t* host) {
  const TensorDesc& desc = graph_.tensor(root);
  const int64_t padded = bucket_rows_[d][root];
  if (desc.dtype != DType::kI32 || desc.shape.empty() || padded <= desc.shape[0]) return OkStatus();
  // Index padding must be inert: slots -1 (KV_WRITE skips them); anything else repeats its last
  // real row (cu_q then closes empty sequences; kv_lens, block tables and positions of padding
  // sequences and rows are never used for a real row).
  const int64_t row = desc.NumElements() / desc.shape[0];
  const int64_t n = (padded - desc.shape[0]) * row;
  std::vector<int32_t> fill(static_cast<size_t>(n), -1);
  const Placement& p = placement_[d][root];
  if (!pad_skip_.count(root)) {
    std::vector<int32_t> last(static_cast<size_t>(row));
    if (host != nullptr) {
      std::copy_n(host + desc.NumElements() - row, row, last.data());
    } else {
      TSR_RETURN_IF_ERROR(ctx_.devices()[d]->Synchronize());
      TSR_RETURN_IF_ERROR(ctx_.devices()[d]->Download(
          *p.buffer, p.offset + static_cast<uint64_t>((desc.NumElements() - row) * 4), last.data(),
          static_cast<uint64_t>(row * 4)));
    }
    for (int64_t i = 0; i < n; ++i) fill[i] = last[i % row];
  }
  return ctx_.devices()[d]->Upload(*p.buffer,
                                   p.offset + static_cast<uint64_t>(desc.NumElements() * 4),
                                   fill.data(), static_cast<uint64_t>(n * 4));
}

Status Executable::UploadWidened(int32_t d, TensorId id, const int32_t* data) {
  // A block table [S, MB] stored as [S_bucket, MB_bucket]: extra columns -1 (never read: kv_lens
  // bounds them), extra rows repeat the last one (padding sequences have no query).
  const TensorDesc& desc = graph_.tensor(id);
  const int64_t rows = desc.shape[0], width = desc.shape[1];
  const int64_t prow = std::max(rows, bucket_rows_[d][id]), pwidth = bucket_cols_[d][id];
  std::vector<int32_t> out(static_cast<size_t>(prow * pwidth), -1);
  for (int64_t r = 0; r < prow; ++r)
    std::copy_n(data + std::min(r, rows - 1) * width, width, out.data() + r * pwidth);
  const Placement& p = placement_[d][id];
  return ctx_.devices()[d]->Upload(*p.buffer, p.offset, out.data(), out.size() * sizeof(int32_t));
}

int64_t Executable::DeviceBytes(int32_t d, TensorId t) const {
  const TensorDesc& desc = graph_.tensor(t);
  return StoredDesc(desc, ctx_.StorageDType(d, desc.dtype), bucket_rows_[d][t], bucket_cols_[d][t])
      .ContiguousBytes();
}

Status Executable::PlanArenas() {
  const size_t n_dev = ctx_.devices().size();
  const auto& steps = schedule_.steps;
  // Which roots each device materializes, and when (in step indices) they are live there.
  std::vector<std::map<TensorId, ArenaItem>> items(n_dev);
  auto touch = [&](TensorId root, int32_t d, int32_t step) {
    const TensorDesc& t = graph_.tensor(root);
    if (t.kind == TensorKind::kWeight || t.kind == TensorKind::kState) return;
    auto [it, fresh] = items[d].try_emplace(root, ArenaItem{DeviceBytes(d, root), step, step});
    if (!fresh) {
      it->second.first = std::min(it->second.first, step);
      it->second.last = std::max(it->second.last, step);
    }
    if (t.kind == TensorKind::kInput) it->second.first = -1;
    if (t.is_output) it->second.last = std::numeric_limits<int32_t>::max();
  };
  // Time advances per copy, per kernel node (nodes of a step run in order, so their
  // intermediates can share bytes) and per compiled step (its nodes run as one).
  int32_t time = 0;
  for (const Step& st : steps) {
    if (st.kind == Step::Kind::kCopy) {
      touch(st.tensor, st.device, time);
      touch(st.tensor, st.from_device, time);
      ++time;
      continue;
    }
    for (int32_t n : st.nodes) {
      const Node& node = graph_.nodes()[n];
      touch(graph_.Root(node.output), st.device, time);
      for (TensorId in : node.inputs)
        if (in != kNoTensor) touch(graph_.Root(in), st.device, time);
      if (st.kind == Step::Kind::kKernels) ++time;
    }
    if (st.kind == Step::Kind::kCompiled) ++time;
  }
  for (TensorId t = 0; t < graph_.num_tensors(); ++t) {
    const TensorDesc& d = graph_.tensor(t);
    if (d.kind == TensorKind::kInput && schedule_.home[t] >= 0) touch(t, schedule_.home[t], 0);
  }
  plans_.resize(n_dev);
  placement_.assign(n_dev, std::vector<Placement>(graph_.num_tensors()));
  for (size_t d = 0; d < n_dev; ++d) {
    std::vector<ArenaItem> list;
    std::vector<TensorId> ids;
    for (const auto& [id, item] : items[d]) {
      ids.push_back(id);
      list.push_back(item);
    }
    plans_[d] = PlanArena(list, ctx_.options().arena_alignment);
    if (list.empty()) continue;
    TSR_ASSIGN_OR_RETURN(DeviceBuffer * arena,
                         ctx_.ArenaOn(static_cast<int32_t>(d), plans_[d].peak_bytes));
    for (size_t i = 0; i < ids.size(); ++i)
      placement_[d][ids[i]] = {arena, static_cast<uint64_t>(plans_[d].offsets[i]), true};
  }
  arena_generation_ = ctx_.arena_generation_;  // every placement points at the current arenas
  // Weights and states.
  for (const Step& st : steps) {
    if (st.kind == Step::Kind::kCopy) continue;
    for (int32_t n : st.nodes) {
      const Node& node = graph_.nodes()[n];
      std::vector<TensorId> touched(node.inputs);
      touched.push_back(node.output);
      for (TensorId t : touched) {
        if (t == kNoTensor) continue;
        TensorId r = graph_.Root(t);
        const TensorDesc& d = graph_.tensor(r);
        if (d.kind == TensorKind::kWeight) {
          TSR_ASSIGN_OR_RETURN(DeviceBuffer * w, ctx_.WeightOn(d.name, d.dtype, st.device));
          if (static_cast<int64_t>(w->size()) < DeviceBytes(st.device, r))
            return InvalidArgument("weight '" + d.name +
                                   "' is bound with fewer bytes than its shape needs");
          placement_[st.device][r] = {w, 0, false};
        } else if (d.kind == TensorKind::kState) {
          const auto& sb = ctx_.states_.at(d.name);
          placement_[st.device][r] = {sb.buffer, sb.offset, false};
        }
      }
    }
  }
  // Staging: cross-device copies, and graph inputs/outputs converted at an f16-only boundary.
  int64_t max_copy = 0;
  for (const Step& st : steps)
    if (st.kind == Step::Kind::kCopy)
      max_copy = std::max(max_copy, graph_.tensor(st.tensor).ContiguousBytes());
  for (TensorId t = 0; t < graph_.num_tensors(); ++t) {
    const TensorDesc& d = graph_.tensor(t);
    int32_t home = schedule_.home[graph_.Root(t)];
    if ((d.kind == TensorKind::kInput || d.is_output) && home >= 0 &&
        ctx_.StorageDType(home, d.dtype) != d.dtype)
      max_copy = std::max(max_copy, d.ContiguousBytes());
  }
  staging_.resize(static_cast<size_t>(max_copy));
  staging_converted_.resize(static_cast<size_t>(max_copy));
  return OkStatus();
}

Status Executable::BuildViews() {
  AbiGraph abi = MakeAbiGraph(graph_);
  abi_nodes_ = std::move(abi.nodes);
  views_.assign(ctx_.devices().size(), abi.tensors);
  for (size_t d = 0; d < views_.size(); ++d) {
    for (TensorId t = 0; t < graph_.num_tensors(); ++t) {
      const TensorDesc& desc = graph_.tensor(t);
      TensorId r = graph_.Root(t);
      const Placement& p = placement_[d][r];
      if (!p.buffer) continue;
      tsr_tensor& v = views_[d][t];
      // On an f16-only device strides and view offsets shrink with the element size.
      const DType stored = ctx_.StorageDType(static_cast<int32_t>(d), desc.dtype);
      v.dtype = static_cast<tsr_dtype>(stored);
      for (int i = 0; i < v.ndim; ++i) v.nb[i] = ScaleBytes(v.nb[i], desc.dtype, stored);
      v.buffer = p.buffer->handle();
      v.offset =
          p.offset +
          (desc.kind == TensorKind::kView ? ScaleBytes(desc.view_offset, desc.dtype, stored) : 0);
    }
  }
  for (auto& [i, cs] : compiled_steps_) {
    int32_t d = schedule_.steps[i].device;
    for (size_t k = 0; k < cs.inputs.size(); ++k) cs.in_views[k] = views_[d][cs.inputs[k]];
    for (size_t k = 0; k < cs.outputs.size(); ++k) cs.out_views[k] = views_[d][cs.outputs[k]];
    cs.ApplyBucket();
  }
  return OkStatus();
}

std::pair<tsr_buffer*, uint64_t> Executable::Location(TensorId t, int32_t d) const {
  return {views_[d][t].buffer, views_[d][t].offset};
}

Status Executable::PrepareCompiled(size_t step_index) {
  const Step& st = schedule_.steps[step_index];
  SerializeOptions so;
  so.storage_dtype = [this, &st](TensorId t) {
    return ctx_.StorageDType(st.device, graph_.tensor(t).dtype);
  };
  auto bucket = step_bucket_.find(step_index);
  const std::map<TensorId, int64_t>* rows =
      bucket == step_bucket_.end() ? nullptr : &bucket->second;
  auto rows_of = [rows](TensorId t) -> int64_t {
    if (rows == nullptr) return 0;
    auto it = rows->find(t);
    return it == rows->end() ? 0 : it->second;
  };
  auto step_cols = step_cols_.find(step_index);
  auto cols_of = [&](TensorId t) -> int64_t {
    if (step_cols == step_cols_.end()) return 0;
    auto it = step_cols->second.find(t);
    return it == step_cols->second.end() ? 0 : it->second;
  };
  if (rows != nullptr) so.bucket_rows = rows_of;
  if (step_cols != step_cols_.end()) so.bucket_cols = cols_of;
  TSR_ASSIGN_OR_RETURN(SerializedSubgraph sub, SerializeSubgraph(graph_, st.nodes, so));
  CompiledStep cs;
  for (TensorId t : sub.inputs) cs.in_cols.push_back(cols_of(t));
  for (TensorId t : sub.inputs) cs.in_rows.push_back(rows_of(t));
  for (TensorId t : sub.outputs) cs.out_rows.push_back(rows_of(t));
  std::vector<tsr_buffer*> weights;
  for (TensorId w : sub.weights)
    weights.push_back(placement_[st.device][graph_.Root(w)].buffer->handle());
  TSR_ASSIGN_OR_RETURN(cs.exe, ctx_.CompiledFor(st.device, sub.proto, weights));
  cs.inputs = sub.inputs;
  cs.outputs = sub.outputs;
  for (TensorId t : cs.inputs) cs.in_views.push_back(views_[st.device][t]);
  for (TensorId t : cs.outputs) cs.out_views.push_back(views_[st.device][t]);
  cs.ApplyBucket();
  compiled_steps_[step_index] = std::move(cs);
  return OkStatus();
}

Status Executable::RunCopy(const Step& st) {
  Device* from = ctx_.devices()[st.from_device];
  Device* to = ctx_.devices()[st.device];
  const Placement& src = placement_[st.from_device][st.tensor];
  const Placement& dst = placement_[st.device][st.tensor];
  const TensorDesc& desc = graph_.tensor(st.tensor);
  const DType src_dt = ctx_.StorageDType(st.from_device, desc.dtype);
  const DType dst_dt = ctx_.StorageDType(st.device, desc.dtype);
  if (src_dt != dst_dt) {
    // Only the real rows travel: bucket padding is never read outside its device.
    const int64_t n = desc.NumElements();
    const uint64_t src_bytes = static_cast<uint64_t>(n * ElementSize(src_dt));
    const uint64_t dst_bytes = static_cast<uint64_t>(n * ElementSize(dst_dt));
    TSR_RETURN_IF_ERROR(from->Synchronize());
    TSR_RETURN_IF_ERROR(from->Download(*src.buffer, src.offset, staging_.data(), src_bytes));
    TSR_RETURN_IF_ERROR(
        ConvertFloats(staging_.data(), src_dt, staging_converted_.data(), dst_dt, n));
    return to->Upload(*dst.buffer, dst.offset, staging_converted_.data(), dst_bytes);
  }
  uint64_t bytes = static_cast<uint64_t>(StoredDesc(desc, src_dt, 0).ContiguousBytes());
  if (&from->plugin() == &to->plugin() && from->plugin().api().buffer_copy) {
    tsr_error err{};
    err.struct_size = sizeof(err);
    tsr_status code = from->plugin().api().buffer_copy(
        src.buffer->handle(), src.offset, dst.buffer->handle(), dst.offset, bytes, nullptr, &err);
    if (code == TSR_OK) return OkStatus();
    if (code != TSR_ERR_UNSUPPORTED && code != TSR_ERR_UNIMPLEMENTED) return from->Check(code, err);
  }
  // Stage through host memory (preallocated in Prepare).
  TSR_RETURN_IF_ERROR(from->Synchronize());
  TSR_RETURN_IF_ERROR(from->Download(*src.buffer, src.offset, staging_.data(), bytes));
  return to->Upload(*dst.buffer, dst.offset, staging_.data(), bytes);
}

Status Executable::RunCompiled(size_t step_index) {
  const Step& st = schedule_.steps[step_index];
  CompiledStep& cs = compiled_steps_.at(step_index);
  Device* dev = ctx_.devices()[st.device];
  tsr_error err{};
  err.struct_size = sizeof(err);
  return dev->Check(dev->plugin().api().run_executable(
                        cs.exe, cs.in_views.data(), static_cast<int32_t>(cs.in_views.size()),
                        cs.out_views.data(), static_cast<int32_t>(cs.out_views.size()), &err),
                    err);
}

Status Executable::Run(std::span<const HostTensor> inputs, std::span<const HostTensor> outputs) {
  // Arenas may have grown (and moved) since Prepare when another graph was prepared.
  bool stale = false;
  for (size_t d = 0; d < placement_.size(); ++d) {
    if (arena_generation_[d] == ctx_.arena_generation_[d]) continue;
    DeviceBuffer* now = ctx_.arenas_[d].get();
    for (Placement& p : placement_[d])
      if (p.in_arena) p.buffer = now;
    arena_generation_[d] = ctx_.arena_generation_[d];
    stale = true;
  }
  if (stale) TSR_RETURN_IF_ERROR(BuildViews());
  for (const HostTensor& in : inputs) {
    if (in.id < 0 || in.id >= graph_.num_tensors() ||
        graph_.tensor(in.id).kind != TensorKind::kInput)
      return InvalidArgument("Run: tensor " + std::to_string(in.id) + " is not a graph input");
    const TensorDesc& d = graph_.tensor(in.id);
    if (static_cast<int64_t>(in.bytes) != d.ContiguousBytes())
      return InvalidArgument("Run: input '" + d.name + "' needs " +
                             std::to_string(d.ContiguousBytes()) + " bytes, got " +
                             std::to_string(in.bytes));
    int32_t home = schedule_.home[in.id];
    if (home < 0) continue;  // unused input
    const Placement& p = placement_[home][in.id];
    const DType stored = ctx_.StorageDType(home, d.dtype);
    if (stored != d.dtype) {
      const int64_t n = d.NumElements();
      TSR_RETURN_IF_ERROR(ConvertFloats(in.data, d.dtype, staging_.data(), stored, n));
      TSR_RETURN_IF_ERROR(ctx_.devices()[home]->Upload(
          *p.buffer, p.offset, staging_.data(), static_cast<uint64_t>(n * ElementSize(stored))));
      continue;
    }
    if (bucket_cols_[home][in.id] > 0) {
      TSR_RETURN_IF_ERROR(UploadWidened(home, in.id, static_cast<const int32_t*>(in.data)));
      continue;
    }
    TSR_RETURN_IF_ERROR(ctx_.devices()[home]->Upload(*p.buffer, p.offset, in.data, in.bytes));
    TSR_RETURN_IF_ERROR(FillPadding(home, in.id, static_cast<const int32_t*>(in.data)));
  }
  for (size_t i = 0; i < schedule_.steps.size(); ++i) {
    const Step& st = schedule_.steps[i];
    switch (st.kind) {
      case Step::Kind::kCopy:
        TSR_RETURN_IF_ERROR(RunCopy(st));
        TSR_RETURN_IF_ERROR(FillPadding(st.device, st.tensor));
        break;
      case Step::Kind::kCompiled: TSR_RETURN_IF_ERROR(RunCompiled(i)); break;
      case Step::Kind::kKernels: {
        tsr_graph_view view{};
        view.struct_size = sizeof(view);
        view.n_tensors = graph_.num_tensors();
        view.tensors = views_[st.device].data();
        view.n_nodes = graph_.num_nodes();
        view.nodes = abi_nodes_.data();
        TSR_RETURN_IF_ERROR(ctx_.devices()[st.device]->Execute(view, st.nodes));
        break;
      }
    }
  }
  for (const HostTensor& out : outputs) {
    if (out.id < 0 || out.id >= graph_.num_tensors())
      return InvalidArgument("Run: output id out of range");
    const TensorDesc& d = graph_.tensor(out.id);
    if (!d.IsContiguous()) return InvalidArgument("Run: output '" + d.name + "' is not contiguous");
    if (static_cast<int64_t>(out.bytes) != d.ContiguousBytes())
      return InvalidArgument("Run: output '" + d.name + "' has " +
                             std::to_string(d.ContiguousBytes()) + " bytes, buffer given holds " +
                             std::to_string(out.bytes));
    TensorId r = graph_.Root(out.id);
    int32_t home = schedule_.home[r];
    if (home < 0) return InvalidArgument("Run: output '" + d.name + "' is never produced");
    Device* dev = ctx_.devices()[home];
    TSR_RETURN_IF_ERROR(dev->Synchronize());
    const tsr_tensor& v = views_[home][out.id];
    const DType stored = ctx_.StorageDType(home, d.dtype);
    if (stored != d.dtype) {
      const int64_t n = d.NumElements();
      TSR_RETURN_IF_ERROR(dev->Download(*placement_[home][r].buffer, v.offset, staging_.data(),
                                        static_cast<uint64_t>(n * ElementSize(stored))));
      TSR_RETURN_IF_ERROR(ConvertFloats(staging_.data(), stored, out.data, d.dtype, n));
      continue;
    }
    TSR_RETURN_IF_ERROR(dev->Download(*placement_[home][r].buffer, v.offset, out.data, out.bytes));
  }
  return OkStatus();
}

}  // namespace tessera
