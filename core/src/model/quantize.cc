#include "tessera/core/model/quantize.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tessera/quant_formats.h"
#include "weight_map.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

// Bump when the file layout or the quantizers change: old files then simply miss.
constexpr uint32_t kFormatVersion = 1;
constexpr char kMagic[8] = {'T', 'S', 'R', 'Q', 'U', 'A', 'N', 'T'};
constexpr uint64_t kHeaderBytes = 128;
constexpr uint64_t kDataAlign = 64;

// The fixed-size head of a cache file; the index (one record per tensor) follows it.
struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t kind;
  char key[32];
  uint64_t num_entries;
  uint64_t index_bytes;  // index records, starting at kHeaderBytes
  uint64_t index_hash;   // Fnv64 of the index records
  uint64_t total_size;   // the whole file; a shorter file is truncated
  uint8_t pad[kHeaderBytes - 80];
};
static_assert(sizeof(FileHeader) == kHeaderBytes);

// FNV-1a, 64 bit: not cryptographic, but the key only has to tell apart files of one machine.
uint64_t Fnv64(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

int64_t BlockBytes(QuantKind kind) {
  return kind == QuantKind::kQ8 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
}

void AppendU64(std::string* s, uint64_t v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof v);
}

// One tensor row of any float dtype as f32 (exact for f16/bf16).
void RowToF32(const TensorInfo& t, int64_t row, int64_t k, float* out) {
  const uint8_t* src = t.data + static_cast<uint64_t>(row * k) * StDTypeSize(t.dtype);
  for (int64_t i = 0; i < k; ++i) {
    if (t.dtype == StDType::kF32) {
      std::memcpy(&out[i], src + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      out[i] = t.dtype == StDType::kF16 ? F16BitsToF32(h)
                                        : std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
    }
  }
}

Status CheckQuantizable(const TensorInfo& t, QuantKind kind) {
  if (kind == QuantKind::kNone) return InvalidArgument("quant kind 'none' has no block format");
  if (t.shape.size() != 2)
    return InvalidArgument("tensor '" + t.name + "' is not 2-D; only matrices are quantized");
  if (t.shape[1] % TSR_QBLOCK != 0)
    return InvalidArgument("tensor '" + t.name + "' has rows of " + std::to_string(t.shape[1]) +
                           " values, not a multiple of 32");
  if (t.dtype != StDType::kF32 && t.dtype != StDType::kF16 && t.dtype != StDType::kBF16)
    return InvalidArgument("tensor '" + t.name + "' has dtype " + StDTypeName(t.dtype) +
                           "; only f32/f16/bf16 are quantized");
  return OkStatus();
}

// Writes all of `n` bytes at `offset`.
Status PWriteAll(int fd, const uint8_t* p, uint64_t n, uint64_t offset, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Internal("writing '" + path + "': " + std::strerror(errno));
    p += w;
    n -= static_cast<uint64_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return OkStatus();
}

struct PlannedEntry {
  const TensorInfo* tensor;
  std::string name;
  uint64_t offset, nbytes;
};

// Index records: u32 name length, name, i64 rows, i64 k, u64 offset, u64 nbytes.
std::string EncodeIndex(const std::vector<PlannedEntry>& plan) {
  std::string s;
  for (const PlannedEntry& e : plan) {
    const uint32_t len = static_cast<uint32_t>(e.name.size());
    s.append(reinterpret_cast<const char*>(&len), 4);
    s += e.name;
    AppendU64(&s, static_cast<uint64_t>(e.tensor->shape[0]));
    AppendU64(&s, static_cast<uint64_t>(e.tensor->shape[1]));
    AppendU64(&s, e.offset);
    AppendU64(&s, e.nbytes);
  }
  return s;
}

// Quantizes the plan's tensors on `threads` threads (one tensor at a time each) into `fd`.
Status WriteTensors(int fd, const std::vector<PlannedEntry>& plan, QuantKind kind, int threads,
                    const std::string& path) {
  std::atomic<size_t> next{0};
  std::vector<Status> errors(static_cast<size_t>(threads));
  auto work = [&](int id) {
    std::vector<uint8_t> buf;
    for (size_t i = next++; i < plan.size(); i = next++) {
      buf.resize(plan[i].nbytes);
      Status st = QuantizeTensor(*plan[i].tensor, kind, buf.data());
      if (st.ok()) st = PWriteAll(fd, buf.data(), buf.size(), plan[i].offset, path);
      if (!st.ok()) {
        errors[static_cast<size_t>(id)] = st;
        next = plan.size();
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& t : pool) t.join();
  for (const Status& st : errors) TSR_RETURN_IF_ERROR(st);
  return OkStatus();
}

// Quantizes into a temporary file next to `path` and renames it into place.
Status WriteCacheFile(const std::string& path, const std::string& key, const Checkpoint& ckpt,
                      const std::vector<std::string>& names, QuantKind kind, int threads) {
  std::vector<PlannedEntry> plan;
  for (const std::string& n : names) {
    TSR_ASSIGN_OR_RETURN(const TensorInfo* t, ckpt.Get(n));
    TSR_RETURN_IF_ERROR(CheckQuantizable(*t, kind));
    plan.push_back({t, n, 0, QuantizedBytes(kind, t->shape[0], t->shape[1])});
  }
  uint64_t index_bytes = EncodeIndex(plan).size();  // offsets do not change its length
  uint64_t offset = (kHeaderBytes + index_bytes + kDataAlign - 1) / kDataAlign * kDataAlign;
  for (PlannedEntry& e : plan) {
    e.offset = offset;
    offset = (offset + e.nbytes + kDataAlign - 1) / kDataAlign * kDataAlign;
  }
  const std::string index = EncodeIndex(plan);
  FileHeader h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kFormatVersion;
  h.kind = static_cast<uint32_t>(kind);
  std::memcpy(h.key, key.data(), std::min<size_t>(key.size(), sizeof h.key));
  h.num_entries = plan.size();
  h.index_bytes = index.size();
  h.index_hash = Fnv64(index.data(), index.size());
  h.total_size = offset;

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return Internal("cannot create '" + tmp + "': " + std::strerror(errno));
  Status st = ::ftruncate(fd, static_cast<off_t>(h.total_size)) == 0
                  ? OkStatus()
                  : Internal("cannot size '" + tmp + "': " + std::strerror(errno));
  if (st.ok()) st = WriteTensors(fd, plan, kind, threads, tmp);
  if (st.ok())
    st = PWriteAll(fd, reinterpret_cast<const uint8_t*>(index.data()), index.size(), kHeaderBytes,
                   tmp);
  // The header goes last: a crash before this point leaves a file that fails validation.
  if (st.ok()) st = PWriteAll(fd, reinterpret_cast<const uint8_t*>(&h), sizeof h, 0, tmp);
  if (st.ok() && ::fsync(fd) != 0) st = Internal("fsync '" + tmp + "': " + std::strerror(errno));
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = Internal("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(errno));
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

// Reads the 8-byte length and the JSON header of a safetensors file.
StatusOr<std::string> ReadSafetensorsHeader(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  if (!in.read(reinterpret_cast<char*>(&n), 8) || n > SafetensorsFile::kMaxHeaderBytes)
    return InvalidArgument("cannot read the header of '" + path + "'");
  std::string s(8 + n, '\0');
  std::memcpy(s.data(), &n, 8);
  if (!in.read(s.data() + 8, static_cast<std::streamsize>(n)))
    return InvalidArgument("cannot read the header of '" + path + "'");
  return s;
}

}  // namespace

const char* QuantKindName(QuantKind kind) {
  switch (kind) {
    case QuantKind::kNone: return "none";
    case QuantKind::kQ8: return "q8";
    case QuantKind::kQ4: return "q4";
  }
  return "?";
}

StatusOr<QuantKind> ParseQuantKind(std::string_view text) {
  for (QuantKind k : {QuantKind::kNone, QuantKind::kQ8, QuantKind::kQ4})
    if (text == QuantKindName(k)) return k;
  return InvalidArgument("unknown quantization '" + std::string(text) +
                         "'; valid values: none, q8, q4");
}

uint64_t QuantizedBytes(QuantKind kind, int64_t rows, int64_t k) {
  if (kind == QuantKind::kNone) return 0;
  return static_cast<uint64_t>(rows * (k / TSR_QBLOCK) * BlockBytes(kind));
}

uint16_t F32ToF16Bits(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t exp = (x >> 23) & 0xffu, mant = x & 0x7fffffu;
  if (exp == 0xff) return sign | 0x7c00u | (mant ? (0x200u | (mant >> 13)) : 0u);
  const int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 31) return sign | 0x7c00u;
  if (e <= 0) {  // a binary16 subnormal (or zero)
    if (e < -10) return sign;
    const uint32_t m = mant | 0x800000u;
    const int shift = 14 - e;
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry up to infinity
  return static_cast<uint16_t>(sign | h);
}

void QuantizeBlockQ8(const float* x, uint8_t* block) {
  float amax = 0.0f;
  for (int i = 0; i < TSR_QBLOCK; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const uint16_t dh = F32ToF16Bits(d);
  std::memcpy(block, &dh, 2);
  for (int i = 0; i < TSR_QBLOCK; ++i) {
    const float q = d == 0.0f ? 0.0f : std::clamp(std::round(x[i] / d), -127.0f, 127.0f);
    block[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(q));
  }
}

void QuantizeBlockQ4(const float* x, uint8_t* block) {
  float amax = 0.0f, m = 0.0f;
  for (int i = 0; i < TSR_QBLOCK; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      m = x[i];
    }
  }
  const float d = m / -8.0f;
  const uint16_t dh = F32ToF16Bits(d);
  std::memcpy(block, &dh, 2);
  uint8_t nib[TSR_QBLOCK];
  for (int i = 0; i < TSR_QBLOCK; ++i)
    nib[i] =
        d == 0.0f ? 8 : static_cast<uint8_t>(std::clamp(std::trunc(x[i] / d + 8.5f), 0.0f, 15.0f));
  for (int i = 0; i < TSR_QBLOCK / 2; ++i)
    block[2 + i] = static_cast<uint8_t>(nib[i] | (nib[i + 16] << 4));
}

Status QuantizeTensor(const TensorInfo& t, QuantKind kind, uint8_t* out) {
  TSR_RETURN_IF_ERROR(CheckQuantizable(t, kind));
  const int64_t rows = t.shape[0], k = t.shape[1];
  const int64_t bb = BlockBytes(kind);
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t r = 0; r < rows; ++r) {
    RowToF32(t, r, k, row.data());
    for (int64_t b = 0; b < k / TSR_QBLOCK; ++b) {
      uint8_t* block = out + (r * (k / TSR_QBLOCK) + b) * bb;
      if (kind == QuantKind::kQ8)
        QuantizeBlockQ8(row.data() + b * TSR_QBLOCK, block);
      else
        QuantizeBlockQ4(row.data() + b * TSR_QBLOCK, block);
    }
  }
  return OkStatus();
}

std::string DefaultCacheRoot(const std::function<const char*(const char*)>& getenv_fn) {
  if (const char* x = getenv_fn("XDG_CACHE_HOME"); x != nullptr && *x == '/')
    return std::string(x) + "/tessera";
  if (const char* h = getenv_fn("HOME"); h != nullptr && *h != '\0')
    return std::string(h) + "/.cache/tessera";
  return "/tmp/tessera-cache";
}

StatusOr<std::string> QuantCacheKey(const Checkpoint& ckpt, const std::vector<std::string>& names,
                                    QuantKind kind) {
  std::string material = "tessera-quant";
  AppendU64(&material, kFormatVersion);
  AppendU64(&material, static_cast<uint64_t>(kind));
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  for (const std::string& n : sorted) material += n + '\0';
  for (const auto& file : ckpt.files()) {
    struct stat st {};
    if (::stat(file->path().c_str(), &st) != 0)
      return NotFound("cannot stat '" + file->path() + "': " + std::strerror(errno));
    TSR_ASSIGN_OR_RETURN(std::string header, ReadSafetensorsHeader(file->path()));
    material += fs::path(file->path()).filename().string() + '\0';
    AppendU64(&material, static_cast<uint64_t>(st.st_size));
    AppendU64(&material, static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
                             static_cast<uint64_t>(st.st_mtim.tv_nsec));
    AppendU64(&material, Fnv64(header.data(), header.size()));
  }
  // Two FNV passes with different bases: 128 bits, so unrelated checkpoints never collide.
  const uint64_t a = Fnv64(material.data(), material.size());
  const uint64_t b = Fnv64(material.data(), material.size(), 0x84222325cbf29ce4ull);
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return std::string(hex);
}

QuantizedWeights::~QuantizedWeights() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

uint64_t QuantizedWeights::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, e] : entries_) n += e.nbytes;
  return n;
}

const QuantizedWeights::Entry* QuantizedWeights::Find(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

Status QuantizedWeights::MapAndValidate(const std::string& path, const std::string& key,
                                        const std::vector<std::string>& names) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("no cache file '" + path + "'");
  struct stat st {};
  const bool sized = ::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) >= kHeaderBytes;
  // 2 MiB aligned and MADV_HUGEPAGE (weight_map.h): decode streams these blocks every token.
  void* m =
      sized ? model_internal::MapWeightsReadOnly(fd, static_cast<size_t>(st.st_size), MAP_SHARED)
            : MAP_FAILED;
  ::close(fd);  // the mapping keeps the file
  if (m == MAP_FAILED) return InvalidArgument("cache file '" + path + "' is too short");
  map_ = m;
  map_bytes_ = static_cast<uint64_t>(st.st_size);
  const auto* base = static_cast<const uint8_t*>(m);
  FileHeader h;
  std::memcpy(&h, base, sizeof h);
  auto bad = [&](const std::string& why) {
    return InvalidArgument("cache file '" + path + "' is invalid: " + why);
  };
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.version != kFormatVersion)
    return bad("magic or version");
  if (h.kind != static_cast<uint32_t>(kind_) || key.compare(0, 32, h.key, 32) != 0)
    return bad("key");
  if (h.total_size != map_bytes_ || h.index_bytes > map_bytes_ - kHeaderBytes)
    return bad("size " + std::to_string(map_bytes_) + ", expected " + std::to_string(h.total_size));
  const uint8_t* p = base + kHeaderBytes;
  const uint8_t* end = p + h.index_bytes;
  if (Fnv64(p, h.index_bytes) != h.index_hash) return bad("index checksum");
  for (uint64_t i = 0; i < h.num_entries; ++i) {
    uint32_t len = 0;
    if (end - p < 4) return bad("index");
    std::memcpy(&len, p, 4);
    if (static_cast<uint64_t>(end - p) < 4ull + len + 32) return bad("index");
    std::string name(reinterpret_cast<const char*>(p + 4), len);
    uint64_t f[4];  // rows, k, offset, nbytes
    std::memcpy(f, p + 4 + len, sizeof f);
    p += 4 + len + sizeof f;
    const int64_t rows = static_cast<int64_t>(f[0]), k = static_cast<int64_t>(f[1]);
    if (k <= 0 || k % TSR_QBLOCK != 0 || rows < 0 || f[3] != QuantizedBytes(kind_, rows, k) ||
        f[2] > map_bytes_ || f[3] > map_bytes_ - f[2])
      return bad("entry '" + name + "'");
    entries_[name] = Entry{base + f[2], f[3], rows, k};
  }
  if (entries_.size() != names.size()) return bad("tensor list");
  for (const std::string& n : names)
    if (!entries_.count(n)) return bad("missing '" + n + "'");
  return OkStatus();
}

StatusOr<std::unique_ptr<QuantizedWeights>> QuantizedWeights::Load(
    const Checkpoint& ckpt, const std::vector<std::string>& names, QuantKind kind,
    const QuantCacheOptions& options) {
  if (kind == QuantKind::kNone) return InvalidArgument("QuantizedWeights::Load needs q8 or q4");
  if (options.dir.empty()) return InvalidArgument("no quantization cache folder given");
  TSR_ASSIGN_OR_RETURN(std::string key, QuantCacheKey(ckpt, names, kind));
  const std::string path = options.dir + "/" + key + "." + QuantKindName(kind);
  auto make = [&] {
    auto w = std::unique_ptr<QuantizedWeights>(new QuantizedWeights());
    w->kind_ = kind;
    w->path_ = path;
    return w;
  };
  auto w = make();
  if (w->MapAndValidate(path, key, names).ok()) {
    w->from_cache_ = true;
    return w;
  }
  // Missing or invalid: (re)build it.
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return Internal("cannot create cache folder '" + options.dir + "': " + ec.message());
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  TSR_RETURN_IF_ERROR(WriteCacheFile(path, key, ckpt, names, kind, threads));
  w = make();
  TSR_RETURN_IF_ERROR(w->MapAndValidate(path, key, names));
  return w;
}

}  // namespace tessera
