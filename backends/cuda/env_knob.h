// The backend's TESSERA_CUDA_* environment knobs (README.md lists them), read with one rule each
// for switches and integers. Callers cache the answer (a function-local static) where it is read
// on a hot path.
#ifndef TESSERA_BACKENDS_CUDA_ENV_KNOB_H_
#define TESSERA_BACKENDS_CUDA_ENV_KNOB_H_

#include <cstdlib>
#include <cstring>

namespace tessera::cuda {

// Unset or empty: `fallback`; "0": off; anything else: on.
inline bool EnvFlag(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strcmp(v, "0") != 0;
}

// Unset or empty: `fallback`; else the value as atoi reads it.
inline int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::atoi(v);
}

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_ENV_KNOB_H_
