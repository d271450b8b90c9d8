// What is in the Hugging Face cache: list, inspect and remove models (engine list/show/rm, and
// the server's /api/tags, /api/show, /api/delete).
#ifndef TESSERA_HUB_MODELS_H_
#define TESSERA_HUB_MODELS_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tessera/core/status.h"
#include "tessera/hub/options.h"

namespace tessera::hub {

// One cached snapshot of a model.
struct ModelInfo {
  std::string name;               // "ORG/NAME", or "ORG/NAME@ref" / "ORG/NAME@commit" if not main
  std::string repo;               // "ORG/NAME"
  std::vector<std::string> refs;  // revisions pointing at this snapshot ("main", ...)
  std::string commit;
  std::string dir;            // the snapshot folder
  int64_t size_bytes = 0;     // the files of the snapshot (blobs they link to)
  std::string architecture;   // config.json architectures[0], "" if none
  std::string model_type;     // config.json model_type
  std::string modality;       // "text", "embedding", "rerank" or "unknown"
  std::string dtype;          // torch_dtype / dtype
  int64_t modified_unix = 0;  // when pulled (newest file of the snapshot)
  nlohmann::json ToJson() const;
};

// Every model snapshot of the cache, sorted by name. Snapshots of datasets and spaces are left
// out. A missing cache folder gives an empty list. Reads only the local disk. Thread-safe.
StatusOr<std::vector<ModelInfo>> ListModels(const HubOptions& options);

// ListModels's fields plus what `engine show` prints.
struct ModelDetails {
  ModelInfo info;
  int64_t parameters = 0;      // summed over the safetensors headers; 0 if none could be read
  int64_t context_length = 0;  // max_position_embeddings (or n_positions, ...); 0 if unknown
  int64_t hidden_size = 0, layers = 0, vocab_size = 0;
  bool chat_template = false;
  std::string chat_template_head;  // its first lines
  std::string license;             // README.md front matter "license:"
  std::vector<std::string> files;  // relative paths
  nlohmann::json ToJson() const;
};

// Inspects a model given by any name ResolveModel accepts (a folder works too). NotFound if a
// Hub model is not in the cache.
StatusOr<ModelDetails> ShowModel(const std::string& name, const HubOptions& options);
// Inspects a model folder (config.json, safetensors headers, README).
StatusOr<ModelDetails> InspectFolder(const std::string& dir);

// Removes a cached model: "ORG/NAME" (or its alias) removes the whole models--ORG--NAME folder;
// "ORG/NAME@REV" removes that revision's snapshot and the refs naming it, then the blobs no
// remaining snapshot links to. Refuses folders outside the cache. Returns what was removed
// (paths) for the log. Takes no lock: do not remove a model while it is being pulled.
StatusOr<std::vector<std::string>> RemoveModel(const std::string& name, const HubOptions& options);

// "ORG/NAME" when `dir` is a snapshot folder of the cache (.../models--ORG--NAME/snapshots/C),
// else "". Lexical only: a server can name a model it was given by folder.
std::string RepoOfSnapshotDir(const std::string& dir);

// A plain GET for local tools (engine ps asks a running server): no token, no retries.
struct HttpGetResult {
  long status = 0;
  std::string body;
};
StatusOr<HttpGetResult> HttpGet(const std::string& url, int timeout_s);

// "1.2 GB", "340 MB", "12 KB" (decimal units, as the Hub shows sizes).
std::string HumanBytes(int64_t bytes);

}  // namespace tessera::hub

#endif  // TESSERA_HUB_MODELS_H_
