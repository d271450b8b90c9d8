// Pull: one metadata request (the revision's commit and file list with blob ids), then the
// wanted files downloaded by a few worker threads, each verified before it enters the cache.
#include "tessera/hub/pull.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cache_layout.h"
#include "digest.h"
#include "http_client.h"
#include "pull_internal.h"
#include "runtime_libs.h"

namespace tessera::hub {

namespace fs = std::filesystem;
using internal::HttpClient;
using internal::HttpRequest;
using internal::HttpResponse;

bool IsInferenceFile(const std::string& path) {
  static const std::set<std::string> kNames = {"config.json",
                                               "generation_config.json",
                                               "tokenizer.json",
                                               "tokenizer_config.json",
                                               "special_tokens_map.json",
                                               "added_tokens.json",
                                               "chat_template.json",
                                               "preprocessor_config.json",
                                               "processor_config.json",
                                               "video_preprocessor_config.json",
                                               "modules.json",
                                               "sentence_bert_config.json",
                                               "config_sentence_transformers.json",
                                               "tokenizer.model",
                                               "spiece.model",
                                               "sentencepiece.bpe.model",
                                               "vocab.json",
                                               "vocab.txt",
                                               "merges.txt",
                                               "README.md",
                                               "LICENSE",
                                               "LICENSE.txt",
                                               "LICENSE.md"};
  auto ends = [&](const char* suffix) {
    size_t n = std::strlen(suffix);
    return path.size() >= n && path.compare(path.size() - n, n, suffix) == 0;
  };
  size_t slash = path.find('/');
  if (slash == std::string::npos)
    return ends(".safetensors") || ends(".safetensors.index.json") || ends(".jinja") ||
           kNames.count(path) > 0;
  // Sentence-transformers modules live in "<index>_<Name>/" folders (1_Pooling, 2_Dense, ...).
  const std::string top = path.substr(0, slash);
  size_t digits = 0;
  while (digits < top.size() && std::isdigit(static_cast<unsigned char>(top[digits]))) ++digits;
  if (digits > 0 && digits + 1 < top.size() && top[digits] == '_' &&
      path.find('/', slash + 1) == std::string::npos)
    return ends(".json") || ends(".safetensors") || ends(".txt");
  return top == "additional_chat_templates" && ends(".jinja");
}

namespace internal {

Status Cancelled(const RepoRef& ref) {
  return FailedPrecondition("pull of " + ref.ToString() + " cancelled");
}

static std::string NormalizeEtag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    etag = etag.substr(1, etag.size() - 2);
  return etag;
}

bool IsHex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Turns a non-2xx answer into a message that says what to do.
Status HttpStatusError(const HttpResponse& r, const std::string& what, const RepoRef& ref,
                       const HubOptions& o) {
  const std::string code = r.Header("x-error-code");
  const std::string msg = r.Header("x-error-message");
  const std::string http = "HTTP " + std::to_string(r.status) + (msg.empty() ? "" : ": " + msg);
  const std::string page = o.endpoint + "/" + ref.repo;
  if ((r.status == 401 || r.status == 404) &&
      (code == "RepoNotFound" || code == "RepositoryNotFound"))
    return NotFound(ref.repo + " was not found on " + o.endpoint + " (" + http +
                    "): check the name (ORG/NAME, case-sensitive); if it is private or gated, " +
                    (o.token.empty() ? "set HF_TOKEN to a token that can read it"
                                     : "the token in HF_TOKEN has no access to it"));
  if (r.status == 401)
    return FailedPrecondition(
        what + ": authentication required (" + http + "): " +
        (o.token.empty() ? "set HF_TOKEN (or the token file $HF_HOME/token) to a token that can "
                           "read " +
                               ref.repo +
                               "; gated models also need their licence "
                               "accepted on " +
                               page
                         : "the token in HF_TOKEN was rejected; check it at "
                           "https://huggingface.co/settings/tokens"));
  if (r.status == 403)
    return FailedPrecondition(ref.repo + " is a gated or private model (" + http +
                              "): accept its licence on " + page +
                              " and set HF_TOKEN to a token of that account" +
                              (o.token.empty() ? "" : " (the current token has no access)"));
  if (r.status == 404 && code == "RevisionNotFound")
    return NotFound("revision '" + ref.revision + "' of " + ref.repo + " not found (" + http + ")");
  if (r.status == 404 && code == "EntryNotFound")
    return NotFound(what + " not found (" + http + ")");
  if (r.status == 404)
    return NotFound(what + ": not found on " + o.endpoint + " (" + http +
                    "): check the name ORG/NAME (case-sensitive) and the revision");
  if (r.status == 429) {
    std::string after = r.Header("retry-after");
    return ResourceExhausted("rate limited by " + o.endpoint + " (" + http + ")" +
                             (after.empty() ? "" : ", retry after " + after + " s") +
                             ": wait and pull again (finished files are kept)" +
                             (o.token.empty() ? "; a HF_TOKEN raises the limit" : ""));
  }
  if (r.status >= 500)
    return FailedPrecondition(o.endpoint + " failed on " + what + " (" + http +
                              "): the Hub may be down; pull again later (finished files are "
                              "kept, partial ones resume)");
  return FailedPrecondition("unexpected " + http + " on " + what);
}

Status TransportError(const HttpResponse& r, const std::string& what, const HubOptions& o) {
  return FailedPrecondition("cannot reach " + o.endpoint + " for " + what + ": " +
                            r.transport_error +
                            " (check the network or HF_ENDPOINT; HF_HUB_OFFLINE=1 uses only the "
                            "cache)");
}

int BackoffMs(const HubOptions& o, int attempt, const HttpResponse& r) {
  std::string after = r.Header("retry-after");
  if (!after.empty() && std::isdigit(static_cast<unsigned char>(after[0])))
    return std::min(std::atoi(after.c_str()), 60) * 1000;
  return std::min(o.retry_base_ms << std::min(attempt, 6), 30000);
}

// Sleeps `ms`, waking early (false) on cancellation.
bool SleepUnlessCancelled(int ms, const std::function<bool()>& cancelled) {
  for (int slept = 0; slept < ms; slept += 20) {
    if (cancelled && cancelled()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(20, ms - slept)));
  }
  return !(cancelled && cancelled());
}

std::string ResolveUrl(const HubOptions& o, const RepoRef& ref, const std::string& commit,
                       const std::string& path) {
  return o.endpoint + "/" + ref.repo + "/resolve/" + commit + "/" + internal::UrlQuote(path, true);
}

}  // namespace internal

namespace {

using namespace internal;  // NOLINT: the helpers above

bool Transient(const HttpResponse& r) {
  return r.complete ? (r.status == 429 || r.status >= 500) : r.retryable;
}

// A request without a body sink, retried after dropped connections, 429 and 5xx.
HttpResponse PerformWithRetry(HttpClient& http, const HttpRequest& req, const HubOptions& o) {
  HttpResponse r;
  for (int attempt = 0;; ++attempt) {
    r = http.Perform(req);
    if (!Transient(r) || attempt >= o.max_retries) return r;
    spdlog::debug("retrying {} ({})", req.url,
                  r.complete ? "HTTP " + std::to_string(r.status) : r.transport_error);
    if (!SleepUnlessCancelled(BackoffMs(o, attempt, r), req.cancelled)) return r;
  }
}

// Fills etag and size of a file the listing gave no blob id for (a mirror), from a HEAD of its
// /resolve/ URL without following redirects: the Hub puts X-Linked-Etag / X-Linked-Size of an
// LFS file on the redirect itself.
Status HeadMetadata(HttpClient& http, const HubOptions& o, const RepoRef& ref,
                    const std::string& commit, PullFile* f,
                    const std::function<bool()>& cancelled) {
  HttpRequest req;
  req.url = ResolveUrl(o, ref, commit, f->path);
  req.head = true;
  req.follow_redirects = false;
  req.cancelled = cancelled;
  HttpResponse r = PerformWithRetry(http, req, o);
  if (!r.complete) return TransportError(r, f->path, o);
  if (r.status >= 400) return HttpStatusError(r, f->path + " of " + ref.ToString(), ref, o);
  std::string linked = r.Header("x-linked-etag");
  f->etag = NormalizeEtag(linked.empty() ? r.Header("etag") : linked);
  f->lfs = !linked.empty();
  std::string size = r.Header("x-linked-size");
  if (size.empty()) size = r.Header("content-length");
  if (!size.empty()) f->size = std::atoll(size.c_str());
  if (f->etag.empty()) return FailedPrecondition("no ETag for " + f->path + " from " + o.endpoint);
  return OkStatus();
}

struct PlanInput {
  HttpClient* http;
  const RepoRef* ref;
  const HubOptions* o;
  std::function<bool()> cancelled;
};

// Parses the revision endpoint's answer: {"sha": ..., "siblings": [{"rfilename", "size",
// "blobId", "lfs": {"sha256", "size"}}]}.
Status ParseListing(const PlanInput& in, const std::string& body, PullPlan* plan) {
  const RepoRef& ref = *in.ref;
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return FailedPrecondition("the file list of " + ref.ToString() + " is not JSON");
  if (!j.contains("sha") || !j["sha"].is_string() || !IsCommitHash(j["sha"].get<std::string>()))
    return FailedPrecondition("the Hub gave no commit id for " + ref.ToString());
  plan->commit = j["sha"].get<std::string>();
  if (!j.contains("siblings") || !j["siblings"].is_array())
    return FailedPrecondition("the Hub gave no file list for " + ref.ToString());
  for (const auto& s : j["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string())
      return FailedPrecondition("malformed file list of " + ref.ToString());
    PullFile f;
    f.path = s["rfilename"].get<std::string>();
    // Every listed name is checked, wanted or not: a repo that lists an escaping path is refused.
    TSR_RETURN_IF_ERROR(internal::ValidateRepoPath(f.path).WithContext(ref.ToString()));
    if (!IsInferenceFile(f.path)) continue;
    if (s.contains("size") && s["size"].is_number_integer()) f.size = s["size"].get<int64_t>();
    if (s.contains("lfs") && s["lfs"].is_object() && s["lfs"].contains("sha256")) {
      f.lfs = true;
      f.etag = s["lfs"].value("sha256", "");
      if (s["lfs"].contains("size") && s["lfs"]["size"].is_number_integer())
        f.size = s["lfs"]["size"].get<int64_t>();
    } else if (s.contains("blobId") && s["blobId"].is_string()) {
      f.etag = s["blobId"].get<std::string>();
    }
    plan->files.push_back(f);
  }
  return OkStatus();
}

// Drops what would duplicate the weights: Mistral-format consolidated*.safetensors next to the
// transformers shards.
void DropDuplicates(std::vector<PullFile>* files) {
  auto consolidated = [](const PullFile& f) {
    return f.path.find('/') == std::string::npos && f.path.rfind("consolidated", 0) == 0;
  };
  bool other = std::any_of(files->begin(), files->end(), [&](const PullFile& f) {
    return !consolidated(f) && f.path.size() > 12 &&
           f.path.compare(f.path.size() - 12, 12, ".safetensors") == 0;
  });
  if (other)
    files->erase(std::remove_if(files->begin(), files->end(),
                                [&](const PullFile& f) {
                                  return consolidated(f) &&
                                         f.path.find(".safetensors") != std::string::npos;
                                }),
                 files->end());
}

StatusOr<PullPlan> FetchPlan(const PlanInput& in, bool* unreachable) {
  const RepoRef& ref = *in.ref;
  const HubOptions& o = *in.o;
  HttpRequest req;
  req.url = o.endpoint + "/api/models/" + ref.repo + "/revision/" +
            internal::UrlQuote(ref.revision, false) + "?blobs=true";
  req.cancelled = in.cancelled;
  HttpResponse r = PerformWithRetry(*in.http, req, o);
  if (r.cancelled) return Cancelled(ref);
  if (!r.complete) {
    *unreachable = true;
    return TransportError(r, "the file list of " + ref.ToString(), o);
  }
  if (r.status != 200) return HttpStatusError(r, ref.ToString(), ref, o);
  PullPlan plan;
  plan.ref = ref;
  TSR_RETURN_IF_ERROR(ParseListing(in, r.body, &plan));
  DropDuplicates(&plan.files);
  bool weights = std::any_of(plan.files.begin(), plan.files.end(), [](const PullFile& f) {
    return f.path.find(".safetensors") != std::string::npos;
  });
  if (!weights)
    return FailedPrecondition(ref.ToString() +
                              " has no *.safetensors weights (only other formats such as "
                              "pytorch_model.bin or GGUF): Tessera loads safetensors checkpoints");
  fs::path blobs = fs::path(o.cache_dir) / internal::RepoFolderName(ref.repo) / "blobs";
  for (PullFile& f : plan.files) {
    if (f.etag.empty())
      TSR_RETURN_IF_ERROR(HeadMetadata(*in.http, o, ref, plan.commit, &f, in.cancelled));
    if (f.lfs) std::transform(f.etag.begin(), f.etag.end(), f.etag.begin(), ::tolower);
    TSR_RETURN_IF_ERROR(internal::ValidateBlobName(f.etag).WithContext(f.path));
    std::error_code ec;
    auto size = fs::file_size(blobs / f.etag, ec);
    f.cached = !ec && (f.size < 0 || static_cast<int64_t>(size) == f.size);
    plan.total_bytes += std::max<int64_t>(f.size, 0);
    if (!f.cached) plan.missing_bytes += std::max<int64_t>(f.size, 0);
  }
  // Small files first (a bad config fails fast), then the largest, so workers finish together.
  std::stable_sort(plan.files.begin(), plan.files.end(), [](const PullFile& a, const PullFile& b) {
    if (a.lfs != b.lfs) return !a.lfs;
    return a.size > b.size;
  });
  return plan;
}

}  // namespace

StatusOr<PullResult> Pull(const RepoRef& ref, const HubOptions& o, const PullOptions& po) {
  if (o.cache_dir.empty()) return InvalidArgument("no Hugging Face cache folder configured");
  PullResult result;
  auto from_cache = [&]() -> StatusOr<PullResult> {
    result.snapshot_dir = FindSnapshot(ref, o);
    if (result.snapshot_dir.empty())
      return NotFound(ref.ToString() + " is not in the cache (" + o.cache_dir + ")" +
                      (o.offline ? " and HF_HUB_OFFLINE is set" : ""));
    result.commit = fs::path(result.snapshot_dir).filename().string();
    result.from_cache_only = true;
    return result;
  };
  if (o.offline) return from_cache();
  // Downloads load libcurl and libcrypto from the system (runtime_libs.h). Without them a cached
  // snapshot still serves, as when the Hub is unreachable.
  if (Status st = internal::DownloadSupport(); !st.ok()) {
    if (FindSnapshot(ref, o).empty()) return st;
    spdlog::warn("{}; using the cached snapshot", st.message());
    return from_cache();
  }
  auto cancelled = [&po] { return po.cancel && po.cancel->load(); };
  HttpClient http(o);
  bool unreachable = false;
  auto plan = FetchPlan({&http, &ref, &o, cancelled}, &unreachable);
  if (!plan.ok()) {
    if (unreachable && !FindSnapshot(ref, o).empty()) {
      spdlog::warn("{}; using the cached snapshot", plan.status().message());
      return from_cache();
    }
    return plan.status();
  }
  if (po.confirm && plan->missing_bytes > 0 && !po.confirm(*plan)) return Cancelled(ref);
  TSR_RETURN_IF_ERROR(internal::FetchFiles(*plan, o, po, &result.downloaded_bytes));
  fs::path repo_dir = fs::path(o.cache_dir) / internal::RepoFolderName(ref.repo);
  if (ref.revision != plan->commit && internal::ReadRef(repo_dir, ref.revision) != plan->commit)
    TSR_RETURN_IF_ERROR(internal::WriteFileAtomic(repo_dir / "refs" / ref.revision, plan->commit));
  result.commit = plan->commit;
  result.files = static_cast<int>(plan->files.size());
  result.snapshot_dir = (repo_dir / "snapshots" / plan->commit).string();
  return result;
}

StatusOr<PullResult> PullByName(const std::string& name, const HubOptions& o,
                                const PullOptions& po) {
  TSR_ASSIGN_OR_RETURN(ResolvedModel m, ResolveModel(name, o));
  if (m.kind == ResolvedModel::Kind::kFolder)
    return InvalidArgument("'" + name + "' is a local folder: there is nothing to pull");
  return Pull(m.ref, o, po);
}

}  // namespace tessera::hub
