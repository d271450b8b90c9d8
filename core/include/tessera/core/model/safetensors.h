// Safetensors checkpoint files: a read-only, validated view of one `*.safetensors` file.
//
// Format (https://huggingface.co/docs/safetensors): 8-byte little-endian header length N, N bytes
// of JSON header, then the data section. The header maps tensor names to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section) plus an
// optional "__metadata__" string->string map.
//
// The file is untrusted input: every size, offset and shape is checked before any pointer into
// the data section is formed. Errors are InvalidArgument (NotFound when the file is missing) and
// name the file and, where there is one, the tensor.
#ifndef TESSERA_CORE_MODEL_SAFETENSORS_H_
#define TESSERA_CORE_MODEL_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tessera/core/status.h"

namespace tessera {

// Element types a safetensors file may hold. F8_* are recognised so a file that holds them opens
// and can be listed, but no kernel consumes them (see RequireComputeDType).
enum class StDType : uint8_t {
  kF64,
  kF32,
  kF16,
  kBF16,
  kI64,
  kI32,
  kI16,
  kI8,
  kU8,
  kBool,
  kF8E4M3,
  kF8E5M2,
};

// The safetensors spelling: "F32", "BF16", "F8_E4M3", ... Thread-safe.
const char* StDTypeName(StDType dtype);
// Bytes per element (BOOL is one byte). Thread-safe.
size_t StDTypeSize(StDType dtype);
// Parses a safetensors dtype string; nullopt for anything unknown. Thread-safe.
std::optional<StDType> ParseStDType(std::string_view name);
// False for dtypes that are recognised but that no compute path accepts (F8_E4M3, F8_E5M2).
bool StDTypeIsComputeSupported(StDType dtype);

// One tensor of a safetensors file. `data` points into the owning SafetensorsFile's read-only
// mapping and stays valid for the lifetime of that file object; it is NOT aligned beyond 1 byte
// in general (the header length decides the data section's alignment), so readers must use
// memcpy or unaligned loads unless they check.
struct TensorInfo {
  std::string name;
  StDType dtype = StDType::kF32;
  std::vector<int64_t> shape;     // row-major, outermost first; empty = scalar
  const uint8_t* data = nullptr;  // (numel * StDTypeSize(dtype)) bytes
  uint64_t nbytes = 0;
  uint64_t file_offset = 0;  // absolute byte offset of `data` in the file

  int64_t numel() const;
};

// Exact decodes of binary16 and bfloat16 bit patterns.
float F16BitsToF32(uint16_t h);
float BF16BitsToF32(uint16_t b);

// The values of an f32/f16/bf16 tensor as f32 (exact); Unimplemented for other dtypes.
StatusOr<std::vector<float>> TensorToF32(const TensorInfo& tensor);

// Unsupported (naming the file and tensor) when `tensor`'s dtype has no compute path.
Status RequireComputeDType(const TensorInfo& tensor, std::string_view file_name);

// A validated safetensors file. Immutable after Open; all const methods are thread-safe.
// Not copyable or movable: TensorInfo::data points into memory this object owns.
class SafetensorsFile {
 public:
  // Upper bound on the JSON header, as in the reference implementation (guards the allocation).
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

  // Maps `path` read-only (MAP_PRIVATE) and validates it. The mapping is released when the
  // returned object is destroyed.
  static StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  // Validates an in-memory image (copied into the object). `display_name` is used in errors.
  // This is the fuzzer's entry point and handy for tests.
  static StatusOr<std::unique_ptr<SafetensorsFile>> FromMemory(
      std::vector<uint8_t> bytes, std::string display_name = "<memory>");

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  // Tensors sorted by file offset (the on-disk order, not the header's key order).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // nullptr when absent.
  const TensorInfo* Find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t file_size() const { return size_; }
  uint64_t header_size() const { return header_size_; }
  // Sum of all tensors' nbytes.
  uint64_t tensor_bytes() const { return tensor_bytes_; }

 private:
  class Mapping;
  SafetensorsFile() = default;
  // Parses and validates [base, base + size). REQUIRES: the bytes outlive *this.
  Status Parse(const uint8_t* base, uint64_t size);

  std::string path_;
  std::unique_ptr<Mapping> mapping_;  // set by Open
  std::vector<uint8_t> owned_;        // set by FromMemory
  uint64_t size_ = 0;
  uint64_t header_size_ = 0;
  uint64_t tensor_bytes_ = 0;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> by_name_;  // keys view tensors_[i].name
  std::map<std::string, std::string> metadata_;
};

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_SAFETENSORS_H_
