// A Hugging Face checkpoint directory's weights: one or more safetensors files behind one name
// lookup.
#ifndef TESSERA_CORE_MODEL_CHECKPOINT_H_
#define TESSERA_CORE_MODEL_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tessera/core/model/safetensors.h"
#include "tessera/core/status.h"

namespace tessera {

// Immutable after Open; all const methods are thread-safe. TensorInfo pointers it returns stay
// valid for the lifetime of the Checkpoint (they point into its mapped shards).
class Checkpoint {
 public:
  // Opens `model_dir`, trying in order (as transformers does):
  //   1. model.safetensors;
  //   2. model.safetensors.index.json: its "weight_map" (tensor name -> shard file name) names the
  //      shards; each shard is opened once and every mapped tensor must be in its shard. Shard
  //      names must be plain file names in model_dir (no '/', '\\' or "..");
  //   3. the only *.safetensors file in the directory (more than one is ambiguous -> error).
  // A tensor name present in two shards is an error.
  static StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& model_dir);

  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  // Looks `name` up exactly, then with the "model." prefix removed or added, so
  // "layers.0.mlp.up_proj.weight" finds "model.layers.0.mlp.up_proj.weight" and vice versa.
  // nullptr when absent.
  const TensorInfo* Find(std::string_view name) const;
  // Like Find, but NotFound naming the tensor and the directory when absent.
  StatusOr<const TensorInfo*> Get(std::string_view name) const;

  // All tensor names as stored, sorted.
  std::vector<std::string> TensorNames() const;
  size_t num_tensors() const { return by_name_.size(); }
  // Sum of every tensor's nbytes.
  uint64_t total_bytes() const { return total_bytes_; }
  const std::string& dir() const { return dir_; }
  // The opened files, in the order they were opened.
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  // The file holding `tensor` (which must come from this checkpoint).
  const SafetensorsFile* FileOf(const TensorInfo* tensor) const;

 private:
  Checkpoint() = default;
  Status AddFile(std::unique_ptr<SafetensorsFile> file);
  Status OpenSharded(const std::string& index_path);

  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  struct Entry {
    const TensorInfo* tensor;
    const SafetensorsFile* file;
  };
  std::unordered_map<std::string_view, Entry> by_name_;  // keys view TensorInfo::name
  uint64_t total_bytes_ = 0;
};

}  // namespace tessera

#endif  // TESSERA_CORE_MODEL_CHECKPOINT_H_
