#include "backends/opencl/program_cache.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "backends/opencl/kernel_source.h"

namespace tessera::gpu {
namespace {

constexpr char kMagic[] = "TSRKBIN1\n";

}  // namespace

std::string ResolveCacheDir(const std::string& option, const char* env_var, const char* sub) {
  std::string v = option;
  if (v.empty() && env_var != nullptr) {
    const char* e = std::getenv(env_var);
    if (e != nullptr) v = e;
  }
  if (v == "none") return "";
  if (!v.empty()) return v;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x == '/')
    return std::string(x) + "/tessera/" + sub;
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0')
    return std::string(h) + "/.cache/tessera/" + sub;
  return std::string("/tmp/tessera-cache/") + sub;
}

std::string CacheEntryPath(const std::string& dir, const std::string& key) {
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx.bin",
                static_cast<unsigned long long>(Fnv1a64(key.data(), key.size())));
  return dir + "/" + name;
}

std::optional<std::vector<unsigned char>> ReadCacheEntry(const std::string& dir,
                                                         const std::string& key) {
  if (dir.empty()) return std::nullopt;
  std::ifstream in(CacheEntryPath(dir, key), std::ios::binary);
  if (!in) return std::nullopt;
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  const std::string header = std::string(kMagic) + key + '\0';
  if (bytes.size() <= header.size() ||
      std::string(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header.size())) !=
          header)
    return std::nullopt;
  return std::vector<unsigned char>(bytes.begin() + static_cast<std::ptrdiff_t>(header.size()),
                                    bytes.end());
}

std::string WriteCacheEntry(const std::string& dir, const std::string& key,
                            const std::vector<unsigned char>& binary) {
  if (dir.empty()) return "caching is disabled";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return "cannot create " + dir + ": " + ec.message();
  const std::string path = CacheEntryPath(dir, key);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    const std::string header = std::string(kMagic) + key + '\0';
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(binary.data()),
              static_cast<std::streamsize>(binary.size()));
    if (!out) {
      std::filesystem::remove(tmp, ec);
      return "cannot write " + tmp;
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return "cannot rename into " + path;
  }
  return "";
}

}  // namespace tessera::gpu
