// Downloading a model from the Hugging Face Hub into the shared Hub cache, as huggingface_hub's
// snapshot_download does: the same URLs, headers, cache layout and lock files, so either tool
// finds and reuses what the other downloaded.
#ifndef TESSERA_HUB_PULL_H_
#define TESSERA_HUB_PULL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tessera/core/status.h"
#include "tessera/hub/names.h"
#include "tessera/hub/options.h"

namespace tessera::hub {

// One file of the plan.
struct PullFile {
  std::string path;   // in the repo, e.g. "model-00001-of-00002.safetensors" (validated)
  std::string etag;   // the blob name: sha256 for LFS files, git blob sha1 otherwise
  int64_t size = -1;  // bytes; -1 = unknown until the download
  bool lfs = false;
  bool cached = false;  // the blob is already in the cache
};

// What a pull will fetch, known after one metadata request.
struct PullPlan {
  RepoRef ref;
  std::string commit;  // the 40-hex commit the revision points to
  std::vector<PullFile> files;
  int64_t total_bytes = 0;    // all files
  int64_t missing_bytes = 0;  // files not in the cache yet
};

// A progress report. `event` says what happened; the byte counts are running totals.
struct PullProgress {
  enum class Event { kPlan, kFileStart, kBytes, kFileDone, kRetry, kDone };
  Event event = Event::kBytes;
  std::string file;  // the file concerned ("" for kPlan and kDone)
  std::string etag;  // its blob name (Ollama's /api/pull reports it as the "digest")
  int64_t file_done = 0, file_total = -1;
  int64_t done = 0, total = 0;  // all files of the plan
  int files_done = 0, files_total = 0;
  std::string message;  // kRetry: why
};

struct PullOptions {
  // Called serially (never two calls at once) from the pulling threads; kBytes at most ~10 times
  // a second per file. May be empty.
  std::function<void(const PullProgress&)> progress;
  // Called once after the plan is known, before any download; returning false cancels the pull
  // (the CLI asks "pull ORG/NAME (N GB)?" here). May be empty.
  std::function<bool(const PullPlan&)> confirm;
  // Set to true from any thread to stop: transfers abort, partial files stay resumable.
  const std::atomic<bool>* cancel = nullptr;
};

struct PullResult {
  std::string snapshot_dir;  // {cache}/models--ORG--NAME/snapshots/{commit}
  std::string commit;
  int64_t downloaded_bytes = 0;  // 0 when everything was cached
  int files = 0;
  bool from_cache_only = false;  // offline or the Hub unreachable: the cached snapshot was used
};

// Downloads what inference needs of `ref` (safetensors, configs, tokenizer, templates, processor
// and sentence-transformers files; the filter is IsInferenceFile) into the cache and returns the
// snapshot folder. Files already cached are not fetched again. Resumes interrupted files from
// their .incomplete part with a Range request, verifies each file (size; sha256 of LFS files;
// git blob sha1 of others) before it enters the cache, and takes {cache}/.locks/.../{etag}.lock
// so that concurrent pulls (threads or processes) of the same model are safe. Thread-safe.
StatusOr<PullResult> Pull(const RepoRef& ref, const HubOptions& options,
                          const PullOptions& pull_options = {});

// Resolves `name` (alias or ORG/NAME[@REV], see ResolveModel) and pulls it.
StatusOr<PullResult> PullByName(const std::string& name, const HubOptions& options,
                                const PullOptions& pull_options = {});

// True for the files of a repo that inference reads (see Pull).
bool IsInferenceFile(const std::string& path);

}  // namespace tessera::hub

#endif  // TESSERA_HUB_PULL_H_
