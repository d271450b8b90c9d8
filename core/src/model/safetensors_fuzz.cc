// libFuzzer entry: arbitrary bytes as a safetensors file. Every input must either parse into a
// consistent view or be rejected with a Status; crashes, leaks and out-of-bounds reads are bugs.
//
// Build: cmake -DTESSERA_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ... --target safetensors_fuzz
// Run:   safetensors_fuzz -max_total_time=30 <scratch_corpus_dir> tests/fixtures/safetensors/corpus
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tessera/core/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  auto file = tessera::SafetensorsFile::FromMemory(std::move(bytes), "fuzz");
  if (!file.ok()) return 0;
  // Touch every byte the view claims, so ASan catches any range the validator let through.
  uint64_t sum = 0;
  for (const tessera::TensorInfo& t : (*file)->tensors()) {
    TSR_CHECK((*file)->Find(t.name) == &t);
    TSR_CHECK(t.file_offset + t.nbytes <= (*file)->file_size());
    for (uint64_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
  }
  volatile uint64_t sink = sum;
  (void)sink;
  return 0;
}
