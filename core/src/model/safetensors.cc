// Safetensors parsing and validation. See safetensors.h for the format and the threat model.
#include "tessera/core/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>
#include <utility>

#include "weight_map.h"

namespace tessera {
namespace {

using nlohmann::json;

struct DTypeEntry {
  StDType dtype;
  const char* name;
  size_t size;
  bool compute;
};

constexpr DTypeEntry kDTypes[] = {
    {StDType::kF64, "F64", 8, true},         {StDType::kF32, "F32", 4, true},
    {StDType::kF16, "F16", 2, true},         {StDType::kBF16, "BF16", 2, true},
    {StDType::kI64, "I64", 8, true},         {StDType::kI32, "I32", 4, true},
    {StDType::kI16, "I16", 2, true},         {StDType::kI8, "I8", 1, true},
    {StDType::kU8, "U8", 1, true},           {StDType::kBool, "BOOL", 1, true},
    {StDType::kF8E4M3, "F8_E4M3", 1, false}, {StDType::kF8E5M2, "F8_E5M2", 1, false},
};

const DTypeEntry& Entry(StDType dtype) {
  for (const DTypeEntry& e : kDTypes) {
    if (e.dtype == dtype) return e;
  }
  TSR_CHECK(false && "StDType missing from kDTypes");
  return kDTypes[0];
}

// A thrown marker used only inside the JSON parser callback to abort a hostile header early;
// it never leaves this file.
struct HeaderRejected {
  std::string reason;
};

// Nesting deeper than this is never a real header; rejecting early bounds parser memory.
constexpr int kMaxJsonDepth = 16;

uint64_t ReadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string Quote(std::string_view s) {
  // Tensor names come from the file; cap them so a hostile 100 MB name cannot flood the log.
  constexpr size_t kMax = 200;
  std::string out = "'";
  out.append(s.substr(0, kMax));
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

// The parser's message quotes the offending input, which may be binary or huge: keep it ASCII and
// short enough to log.
std::string PrintableMessage(std::string_view s) {
  constexpr size_t kMax = 300;
  std::string out;
  for (char c : s.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7F) ? c : '?';
  }
  if (s.size() > kMax) out += "...";
  return out;
}

// Reads a JSON number that must be a non-negative integer; `what` names it in errors.
Status ReadU64(const json& v, const std::string& what, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return OkStatus();
  }
  if (v.is_number_integer()) {  // signed and therefore negative
    return InvalidArgument(what + " is negative (" + v.dump() + ")");
  }
  return InvalidArgument(what + " must be a non-negative integer, got " + v.dump().substr(0, 64));
}

struct ParsedEntry {
  TensorInfo info;
  uint64_t begin = 0;
  uint64_t end = 0;
};

// Validates one header entry (everything that does not need the other tensors).
Status ParseEntry(const std::string& name, const json& v, uint64_t data_size, ParsedEntry* out) {
  if (!v.is_object()) return InvalidArgument("entry is not a JSON object");
  auto dtype_it = v.find("dtype");
  auto shape_it = v.find("shape");
  auto offsets_it = v.find("data_offsets");
  if (dtype_it == v.end()) return InvalidArgument("missing key 'dtype'");
  if (shape_it == v.end()) return InvalidArgument("missing key 'shape'");
  if (offsets_it == v.end()) return InvalidArgument("missing key 'data_offsets'");
  if (!dtype_it->is_string()) return InvalidArgument("'dtype' is not a string");
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  std::optional<StDType> dtype = ParseStDType(dtype_name);
  if (!dtype) return InvalidArgument("unknown dtype " + Quote(dtype_name));
  if (!shape_it->is_array()) return InvalidArgument("'shape' is not an array");
  if (!offsets_it->is_array() || offsets_it->size() != 2) {
    return InvalidArgument("'data_offsets' must be an array [begin, end]");
  }

  TensorInfo& info = out->info;
  info.name = name;
  info.dtype = *dtype;
  uint64_t numel = 1;
  for (size_t i = 0; i < shape_it->size(); ++i) {
    uint64_t dim = 0;
    TSR_RETURN_IF_ERROR(ReadU64((*shape_it)[i], "shape[" + std::to_string(i) + "]", &dim));
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(numel, dim, &numel)) {
      return InvalidArgument("shape " + shape_it->dump().substr(0, 128) +
                             " overflows the element count");
    }
    info.shape.push_back(static_cast<int64_t>(dim));
  }
  if (numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
      __builtin_mul_overflow(numel, StDTypeSize(*dtype), &info.nbytes)) {
    return InvalidArgument("shape " + shape_it->dump().substr(0, 128) +
                           " overflows the byte count");
  }
  TSR_RETURN_IF_ERROR(ReadU64((*offsets_it)[0], "data_offsets[0]", &out->begin));
  TSR_RETURN_IF_ERROR(ReadU64((*offsets_it)[1], "data_offsets[1]", &out->end));
  if (out->end < out->begin) {
    return InvalidArgument("data_offsets end " + std::to_string(out->end) + " < begin " +
                           std::to_string(out->begin));
  }
  if (out->end > data_size) {
    return InvalidArgument("data_offsets [" + std::to_string(out->begin) + ", " +
                           std::to_string(out->end) + "] extend past the data section (" +
                           std::to_string(data_size) + " bytes)");
  }
  if (out->end - out->begin != info.nbytes) {
    return InvalidArgument("data_offsets span " + std::to_string(out->end - out->begin) +
                           " bytes but dtype " + dtype_name + " and shape " +
                           shape_it->dump().substr(0, 128) + " need " +
                           std::to_string(info.nbytes));
  }
  return OkStatus();
}

// Parses the header text, rejecting duplicate top-level keys (nlohmann would silently keep the
// last one) and absurd nesting.
Status ParseHeaderJson(const char* begin, const char* end, json* out) {
  std::unordered_set<std::string> seen;
  auto callback = [&seen](int depth, json::parse_event_t event, json& parsed) -> bool {
    if (depth > kMaxJsonDepth) throw HeaderRejected{"JSON nesting is deeper than 16"};
    if (event == json::parse_event_t::key && depth == 1) {
      std::string key = parsed.get<std::string>();
      if (!seen.insert(key).second) throw HeaderRejected{"duplicate tensor name " + Quote(key)};
    }
    return true;
  };
  try {
    *out = json::parse(begin, end, callback, /*allow_exceptions=*/true);
  } catch (const HeaderRejected& e) {
    return InvalidArgument(e.reason);
  } catch (const std::exception& e) {
    return InvalidArgument("header is not valid JSON: " + PrintableMessage(e.what()));
  }
  return OkStatus();
}

Status ParseMetadata(const json& v, std::map<std::string, std::string>* out) {
  if (!v.is_object()) return InvalidArgument("'__metadata__' is not a JSON object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_string()) {
      return InvalidArgument("'__metadata__' value for " + Quote(it.key()) + " is not a string");
    }
    (*out)[it.key()] = it.value().get<std::string>();
  }
  return OkStatus();
}

// Sorts `entries` by offset and rejects overlapping byte ranges: after sorting by begin, every
// non-empty range must start at or after the end of all earlier ones. Empty tensors occupy no
// bytes and cannot overlap anything.
Status SortAndCheckNoOverlap(const std::string& path, std::vector<ParsedEntry>* entries) {
  std::sort(entries->begin(), entries->end(), [](const ParsedEntry& a, const ParsedEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered_end = 0;
  const std::string* covered_by = nullptr;
  for (const ParsedEntry& e : *entries) {
    if (e.begin == e.end) continue;
    if (covered_by != nullptr && e.begin < covered_end) {
      return InvalidArgument(path + ": tensor " + Quote(e.info.name) + " bytes [" +
                             std::to_string(e.begin) + ", " + std::to_string(e.end) +
                             ") overlap tensor " + Quote(*covered_by) + " (ends at " +
                             std::to_string(covered_end) + ")");
    }
    covered_end = e.end;
    covered_by = &e.info.name;
  }
  return OkStatus();
}

}  // namespace

const char* StDTypeName(StDType dtype) {
  return Entry(dtype).name;
}
size_t StDTypeSize(StDType dtype) {
  return Entry(dtype).size;
}
bool StDTypeIsComputeSupported(StDType dtype) {
  return Entry(dtype).compute;
}

std::optional<StDType> ParseStDType(std::string_view name) {
  for (const DTypeEntry& e : kDTypes) {
    if (name == e.name) return e.dtype;
  }
  return std::nullopt;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // overflow excluded at parse time
  return n;
}

Status RequireComputeDType(const TensorInfo& tensor, std::string_view file_name) {
  if (StDTypeIsComputeSupported(tensor.dtype)) return OkStatus();
  return Unsupported(std::string(file_name) + ": tensor " + Quote(tensor.name) + " has dtype " +
                     StDTypeName(tensor.dtype) +
                     ", which is recognised but not supported for compute");
}

// RAII owner of a read-only file mapping.
class SafetensorsFile::Mapping {
 public:
  Mapping(void* addr, size_t size) : addr_(addr), size_(size) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr_ != nullptr) munmap(addr_, size_);
  }
  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }

 private:
  void* addr_;
  size_t size_;
};

SafetensorsFile::~SafetensorsFile() = default;

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg = path + ": cannot open: " + std::strerror(err);
    return err == ENOENT ? NotFound(msg) : InvalidArgument(msg);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(path + ": not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return InvalidArgument(path + ": file is " + std::to_string(size) +
                           " bytes, too short for the 8-byte header length");
  }
  // 2 MiB aligned and MADV_HUGEPAGE: see weight_map.h.
  void* addr = model_internal::MapWeightsReadOnly(fd, size, MAP_PRIVATE);
  int map_err = errno;
  // The mapping keeps the file alive; the descriptor is not needed any more.
  ::close(fd);
  if (addr == MAP_FAILED) {
    return InvalidArgument(path + ": mmap failed: " + std::strerror(map_err));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->mapping_ = std::make_unique<Mapping>(addr, size);
  TSR_RETURN_IF_ERROR(file->Parse(file->mapping_->data(), size));
  return file;
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromMemory(std::vector<uint8_t> bytes,
                                                                       std::string display_name) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = std::move(display_name);
  file->owned_ = std::move(bytes);
  TSR_RETURN_IF_ERROR(file->Parse(file->owned_.data(), file->owned_.size()));
  return file;
}

const TensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

Status SafetensorsFile::Parse(const uint8_t* base, uint64_t size) {
  size_ = size;
  if (size < 8) {
    return InvalidArgument(path_ + ": file is " + std::to_string(size) +
                           " bytes, too short for the 8-byte header length");
  }
  const uint64_t n = ReadLe64(base);
  if (n < 2) return InvalidArgument(path_ + ": header length " + std::to_string(n) + " is < 2");
  if (n > kMaxHeaderBytes) {
    return InvalidArgument(path_ + ": header length " + std::to_string(n) +
                           " exceeds the 100 MB limit");
  }
  if (n > size - 8) {
    return InvalidArgument(path_ + ": header length " + std::to_string(n) +
                           " is larger than the rest of the file (" + std::to_string(size - 8) +
                           " bytes)");
  }
  header_size_ = n;
  const char* text = reinterpret_cast<const char*>(base + 8);
  json header;
  Status parsed = ParseHeaderJson(text, text + n, &header);
  if (!parsed.ok()) return parsed.WithContext(path_);
  if (!header.is_object()) return InvalidArgument(path_ + ": header is not a JSON object");

  const uint64_t data_start = 8 + n;
  const uint64_t data_size = size - data_start;
  std::vector<ParsedEntry> entries;
  entries.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      Status s = ParseMetadata(it.value(), &metadata_);
      if (!s.ok()) return s.WithContext(path_);
      continue;
    }
    ParsedEntry entry;
    Status s = ParseEntry(it.key(), it.value(), data_size, &entry);
    if (!s.ok()) return s.WithContext(path_ + ": tensor " + Quote(it.key()));
    entries.push_back(std::move(entry));
  }

  TSR_RETURN_IF_ERROR(SortAndCheckNoOverlap(path_, &entries));

  tensors_.reserve(entries.size());
  for (ParsedEntry& e : entries) {
    e.info.data = base + data_start + e.begin;
    e.info.file_offset = data_start + e.begin;
    tensor_bytes_ += e.info.nbytes;
    tensors_.push_back(std::move(e.info));
  }
  // Built last: the keys view strings owned by tensors_, which no longer reallocates.
  for (size_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, i);
  return OkStatus();
}

float F16BitsToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // mant * 2^-24, exact
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

float BF16BitsToF32(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

StatusOr<std::vector<float>> TensorToF32(const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  uint16_t h = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    switch (t.dtype) {
      case StDType::kF32: std::memcpy(&out[i], t.data + 4 * i, 4); break;
      case StDType::kF16:
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = F16BitsToF32(h);
        break;
      case StDType::kBF16:
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = BF16BitsToF32(h);
        break;
      default:
        return Unimplemented("tensor '" + t.name + "' has dtype " + StDTypeName(t.dtype) +
                             ", not f32/f16/bf16");
    }
  }
  return out;
}

}  // namespace tessera
