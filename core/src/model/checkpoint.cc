// Checkpoint directory resolution (single file, sharded index, lone *.safetensors).
#include "tessera/core/model/checkpoint.h"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>
#include <utility>

namespace tessera {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kModelPrefix = "model.";
// An index is a name->file map; anything near this size is not an index.
constexpr uintmax_t kMaxIndexBytes = 64u << 20;

bool IsRegularFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// Shard names come from an untrusted index: only plain file names inside the model dir.
Status CheckShardName(const std::string& shard, const std::string& index_path) {
  if (shard.empty() || shard.find('/') != std::string::npos ||
      shard.find('\\') != std::string::npos || shard.find("..") != std::string::npos ||
      shard.find('\0') != std::string::npos) {
    return InvalidArgument(index_path + ": shard file name '" + shard.substr(0, 200) +
                           "' is not a plain file name in the model directory");
  }
  return OkStatus();
}

StatusOr<json> ReadJsonFile(const std::string& path) {
  std::error_code ec;
  uintmax_t size = fs::file_size(path, ec);
  if (ec) return NotFound(path + ": cannot stat: " + ec.message());
  if (size > kMaxIndexBytes) return InvalidArgument(path + ": too large for an index file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open");
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    return json::parse(buf.str());
  } catch (const std::exception& e) {
    return InvalidArgument(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace

StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& model_dir) {
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    return NotFound(model_dir + ": not a directory");
  }
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->dir_ = model_dir;
  const fs::path dir(model_dir);

  if (IsRegularFile(dir / "model.safetensors")) {
    TSR_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open((dir / "model.safetensors").string()));
    TSR_RETURN_IF_ERROR(ckpt->AddFile(std::move(file)));
    return ckpt;
  }
  if (IsRegularFile(dir / "model.safetensors.index.json")) {
    TSR_RETURN_IF_ERROR(ckpt->OpenSharded((dir / "model.safetensors.index.json").string()));
    return ckpt;
  }

  std::vector<fs::path> candidates;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".safetensors" && IsRegularFile(e.path())) {
      candidates.push_back(e.path());
    }
  }
  if (ec) return InvalidArgument(model_dir + ": cannot list: " + ec.message());
  if (candidates.empty()) {
    return NotFound(model_dir +
                    ": no model.safetensors, model.safetensors.index.json or *.safetensors file");
  }
  if (candidates.size() > 1) {
    std::sort(candidates.begin(), candidates.end());
    std::string names;
    for (const fs::path& p : candidates) names += " " + p.filename().string();
    return InvalidArgument(model_dir +
                           ": several *.safetensors files and no index to say which "
                           "belong to the model:" +
                           names);
  }
  TSR_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(candidates[0].string()));
  TSR_RETURN_IF_ERROR(ckpt->AddFile(std::move(file)));
  return ckpt;
}

Status Checkpoint::OpenSharded(const std::string& index_path) {
  TSR_ASSIGN_OR_RETURN(json index, ReadJsonFile(index_path));
  if (!index.is_object()) return InvalidArgument(index_path + ": not a JSON object");
  auto wm = index.find("weight_map");
  if (wm == index.end()) return InvalidArgument(index_path + ": missing key 'weight_map'");
  if (!wm->is_object()) return InvalidArgument(index_path + ": 'weight_map' is not an object");

  // Open each shard once, in first-mention order.
  std::unordered_map<std::string, const SafetensorsFile*> shards;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string()) {
      return InvalidArgument(index_path + ": weight_map entry for '" + it.key().substr(0, 200) +
                             "' is not a string");
    }
    const std::string& shard = it.value().get_ref<const std::string&>();
    if (shards.count(shard) != 0) continue;
    TSR_RETURN_IF_ERROR(CheckShardName(shard, index_path));
    const fs::path shard_path = fs::path(dir_) / shard;
    if (!IsRegularFile(shard_path)) {
      return NotFound(index_path + ": shard '" + shard + "' (for tensor '" +
                      it.key().substr(0, 200) + "') does not exist");
    }
    TSR_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(shard_path.string()));
    shards[shard] = file.get();
    TSR_RETURN_IF_ERROR(AddFile(std::move(file)));
  }
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    const SafetensorsFile* file = shards.at(it.value().get_ref<const std::string&>());
    if (file->Find(it.key()) == nullptr) {
      return InvalidArgument(index_path + ": tensor '" + it.key().substr(0, 200) +
                             "' is mapped to shard '" + it.value().get<std::string>() +
                             "' but that file does not contain it");
    }
  }
  return OkStatus();
}

Status Checkpoint::AddFile(std::unique_ptr<SafetensorsFile> file) {
  for (const TensorInfo& t : file->tensors()) {
    auto [it, inserted] = by_name_.emplace(t.name, Entry{&t, file.get()});
    if (!inserted) {
      return InvalidArgument(dir_ + ": tensor '" + t.name.substr(0, 200) + "' is in both " +
                             it->second.file->path() + " and " + file->path());
    }
    total_bytes_ += t.nbytes;
  }
  files_.push_back(std::move(file));
  return OkStatus();
}

const TensorInfo* Checkpoint::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  if (it != by_name_.end()) return it->second.tensor;
  if (name.substr(0, kModelPrefix.size()) == kModelPrefix) {
    it = by_name_.find(name.substr(kModelPrefix.size()));
  } else {
    std::string prefixed(kModelPrefix);
    prefixed.append(name);
    it = by_name_.find(std::string_view(prefixed));
  }
  return it == by_name_.end() ? nullptr : it->second.tensor;
}

StatusOr<const TensorInfo*> Checkpoint::Get(std::string_view name) const {
  const TensorInfo* t = Find(name);
  if (t == nullptr) {
    return NotFound(dir_ + ": no tensor '" + std::string(name) +
                    "' (also tried with/without "
                    "the 'model.' prefix)");
  }
  return t;
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, entry] : by_name_) names.emplace_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

const SafetensorsFile* Checkpoint::FileOf(const TensorInfo* tensor) const {
  if (tensor == nullptr) return nullptr;
  auto it = by_name_.find(tensor->name);
  return it != by_name_.end() && it->second.tensor == tensor ? it->second.file : nullptr;
}

}  // namespace tessera
