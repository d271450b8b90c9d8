// Quantization at load time: f32/f16/bf16 checkpoint matrices -> the block formats of
// tessera/quant_formats.h (Q8_B32, Q4_B32), and an on-disk cache of the result so that only the
// first start pays for it.
//
// The cache lives in the engine's own cache folder (DefaultCacheRoot() + "/quant"), never next
// to the checkpoint (which may be a read-only Hugging Face snapshot). One file per (checkpoint
// identity, quant kind, tensor list); the key hashes, for every safetensors file, its name, size,
// mtime (ns) and JSON header, so a changed file misses without re-hashing gigabytes of weights.
// Files are written to a temporary name and renamed, so a reader sees a whole file or none; a
// later start validates the header, the index and the size before it maps the file read-only.
#ifndef TESSERA_CORE_MODEL_QUANTIZE_H_
#define TESSERA_CORE_MODEL_QUANTIZE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/core/model/checkpoint.h"
#include "tessera/core/status.h"

namespace tessera {

enum class QuantKind : uint8_t { kNone, kQ8, kQ4 };

// "none", "q8", "q4". Thread-safe.
const char* QuantKindName(QuantKind kind);
// Parses "none" | "q8" | "q4" (as the `quantize` setting spells them); anything else is
// InvalidArgument listing the valid values. Thread-safe.
StatusOr<QuantKind> ParseQuantKind(std::string_view text);
// Bytes of `rows` rows of `k` values in `kind` (k a multiple of 32). Thread-safe.
uint64_t QuantizedBytes(QuantKind kind, int64_t rows, int64_t k);

// The reference quantizers of quant_formats.h, bit-exact with the CPU backend's COPY
// (backends/cpu/convert.h; quantize_test.cc checks the two agree). `x` is 32 floats, `block`
// 34 (Q8) or 18 (Q4) bytes. Pure, thread-safe.
void QuantizeBlockQ8(const float* x, uint8_t* block);
void QuantizeBlockQ4(const float* x, uint8_t* block);
// Round-to-nearest-even binary16 (the block scale's encoding); the decode is F16BitsToF32
// (safetensors.h).
uint16_t F32ToF16Bits(float f);

// Quantizes a 2-D f32/f16/bf16 tensor [rows, k] (k % 32 == 0) into `out`, which must hold
// QuantizedBytes(kind, rows, k) bytes. InvalidArgument for other dtypes, ranks or k.
// Thread-safe (reads `t`, writes `out` only).
Status QuantizeTensor(const TensorInfo& t, QuantKind kind, uint8_t* out);

// The engine's cache root: $XDG_CACHE_HOME/tessera, else $HOME/.cache/tessera, else
// /tmp/tessera-cache. `getenv_fn` is injected so tests and callers decide where it comes from.
std::string DefaultCacheRoot(const std::function<const char*(const char*)>& getenv_fn);

// The cache key (32 hex digits) of quantizing `names` of `ckpt` in `kind`: format version,
// kind, the sorted names, and each safetensors file's name, size, mtime_ns and header hash.
// Reads only the files' headers. Thread-safe.
StatusOr<std::string> QuantCacheKey(const Checkpoint& ckpt, const std::vector<std::string>& names,
                                    QuantKind kind);

struct QuantCacheOptions {
  std::string dir;  // cache folder for quantized files (e.g. DefaultCacheRoot(...) + "/quant")
  int threads = 0;  // quantization threads on a miss; 0 = one per hardware thread
};

// Quantized copies of some of a checkpoint's matrices, mapped read-only from a cache file.
// Immutable after Load; const methods are thread-safe. Pointers it returns stay valid for the
// lifetime of this object (the checkpoint need not outlive it).
class QuantizedWeights {
 public:
  // Returns `names` (tensors of `ckpt`, each 2-D f32/f16/bf16 with k % 32 == 0) quantized to
  // `kind`: mapped from the cache when a valid file for the key exists, else quantized now,
  // written atomically and mapped. A corrupt or truncated cache file is replaced.
  static StatusOr<std::unique_ptr<QuantizedWeights>> Load(const Checkpoint& ckpt,
                                                          const std::vector<std::string>& names,
                                                          QuantKind kind,
                                                          const QuantCacheOptions& options);
  ~QuantizedWeights();
  QuantizedWeights(const QuantizedWeights&) = delete;
  QuantizedWeights& operator=(const QuantizedWeights&) = delete;

  struct Entry {
    const uint8_t* data;  // [rows, k / 32] blocks, rows back to back
    uint64_t nbytes;
    int64_t rows, k;
  };
  // nullptr when `name` (as given to Load) is not in this set.
  const Entry* Find(std::string_view name) const;
  QuantKind kind() const { return kind_; }
  bool from_cache() const { return from_cache_; }  // false: quantized by this Load
  const std::string& path() const { return path_; }
  uint64_t total_bytes() const;

 private:
  QuantizedWeights() = default;
  Status MapAndValidate(const std::string& path, const std::string& key,
                        const std::vector<std::string>& names);

  QuantKind kind_ = QuantKind::kNone;
  bool from_cache_ = false;
  std::string path_;
  void* map_ = nullptr;
  uint64_t map_bytes_ = 0;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_QUANTIZE_H_
