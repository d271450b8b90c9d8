// A folder of compiled kernel programs keyed by everything that invalidates one (device, driver,
// source hash, build options, plugin version). Used by the OpenCL plugin for program binaries and
// by the Level Zero plugin for native module binaries; API-agnostic (bytes in, bytes out).
//
// Entry file: <dir>/<16 hex digits of FNV-1a(key)>.bin holding a magic line, the full key and the
// binary, so a hash collision or a foreign file is detected and ignored. Writes go to a temporary
// file renamed into place: concurrent processes never see a partial entry.
#ifndef TESSERA_BACKENDS_OPENCL_PROGRAM_CACHE_H_
#define TESSERA_BACKENDS_OPENCL_PROGRAM_CACHE_H_

#include <optional>
#include <string>
#include <vector>

namespace tessera::gpu {

// The cache folder: `option` when set ("none" disables caching: returns ""), else env
// `env_var`, else $XDG_CACHE_HOME/tessera/<sub>, else $HOME/.cache/tessera/<sub>.
std::string ResolveCacheDir(const std::string& option, const char* env_var, const char* sub);

// The path the entry for `key` lives at in `dir`.
std::string CacheEntryPath(const std::string& dir, const std::string& key);

// The cached binary for `key`, or nullopt (missing, unreadable, or another key's entry).
std::optional<std::vector<unsigned char>> ReadCacheEntry(const std::string& dir,
                                                         const std::string& key);

// Stores `binary` under `key`, creating `dir`; "" on success, else why not (the caller logs it:
// a cache that cannot be written costs time, not correctness).
std::string WriteCacheEntry(const std::string& dir, const std::string& key,
                            const std::vector<unsigned char>& binary);

}  // namespace tessera::gpu

#endif  // TESSERA_BACKENDS_OPENCL_PROGRAM_CACHE_H_
