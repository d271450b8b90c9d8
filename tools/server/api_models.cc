// Ollama's model management on the Hugging Face cache: POST /api/pull (NDJSON progress),
// DELETE /api/delete, and the cached models that /api/tags and /v1/models list beside the loaded
// ones. The downloads themselves are tessera::hub's (docs/models.md).
#include <spdlog/spdlog.h>

#include <deque>

#include "api_internal.h"
#include "tessera/hub/models.h"
#include "tessera/hub/names.h"
#include "tessera/hub/pull.h"

namespace tessera::server {

// A pull running on a pull thread, reported as Ollama reports it: NDJSON status lines when
// streaming, one {"status": "success"} (or an error) otherwise.
class PullJob final : public PendingBody {
 public:
  explicit PullJob(bool streaming) : streaming_(streaming) {}

  void SetWaker(std::function<void()> waker) override {
    std::function<void()> wake;
    {
      std::lock_guard<std::mutex> l(mu_);
      waker_ = std::move(waker);
      if (waker_ && (!lines_.empty() || done_)) wake = waker_;
    }
    if (wake) wake();
  }
  bool Drain(std::string* out) override {
    std::lock_guard<std::mutex> l(mu_);
    if (streaming_) {
      for (const std::string& line : lines_) *out += line;
      lines_.clear();
    } else if (done_) {
      *out = final_line_;
    }
    return done_;
  }
  void Cancel() override { cancel_.store(true); }
  int final_status() const override {
    std::lock_guard<std::mutex> l(mu_);
    return status_;
  }

  const std::atomic<bool>* cancel_flag() const { return &cancel_; }

  void Push(const Json& j) {
    std::function<void()> wake;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (streaming_) lines_.push_back(j.dump() + "\n");
      wake = waker_;
    }
    if (wake) wake();
  }
  void Finish(int status, const Json& last) {
    std::function<void()> wake;
    {
      std::lock_guard<std::mutex> l(mu_);
      status_ = status;
      final_line_ = last.dump() + "\n";
      if (streaming_) lines_.push_back(final_line_);
      done_ = true;
      wake = waker_;
    }
    if (wake) wake();
  }

 private:
  const bool streaming_;
  mutable std::mutex mu_;
  std::function<void()> waker_;
  std::deque<std::string> lines_;
  std::string final_line_;
  int status_ = 200;
  bool done_ = false;
  std::atomic<bool> cancel_{false};
};

namespace {

const char* kNoHub =
    "model management is off on this server (it serves only the models it was "
    "started with)";

std::string ReadName(const Json& body) {
  for (const char* key : {"model", "name"})
    if (auto it = body.find(key); it != body.end() && it->is_string())
      return it->get<std::string>();
  return "";
}

Json ProgressLine(const hub::PullProgress& p) {
  using E = hub::PullProgress::Event;
  switch (p.event) {
    case E::kPlan: return Json{{"status", "pulling manifest"}};
    case E::kDone: return Json{{"status", "verifying sha256 digest"}};
    case E::kRetry: return Json{{"status", "retrying: " + p.message}};
    default: break;
  }
  Json j{
      {"status", "pulling " + p.file}, {"digest", "sha256:" + p.etag}, {"completed", p.file_done}};
  if (p.file_total >= 0) j["total"] = p.file_total;
  return j;
}

}  // namespace

HttpReply HandleOllamaPull(const HttpRequest& req, Api::Context& ctx) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return OllamaError(body.status());
  if (!ctx.hub) return OllamaError(403, kNoHub);
  bool stream = true;
  if (Status st = ReadBool(*body, "stream", &stream); !st.ok()) return OllamaError(st);
  const std::string name = ReadName(*body);
  if (name.empty()) return OllamaError(400, "'model' is required (ORG/NAME[@REV] or an alias)");
  // Names only: the server never treats a request's string as a folder.
  auto resolved = hub::ResolveModel(name, *ctx.hub);
  if (!resolved.ok())
    return OllamaError(HttpStatusOf(resolved.status()), resolved.status().message());
  if (resolved->kind == hub::ResolvedModel::Kind::kFolder)
    return OllamaError(400,
                       "'" + name + "' is a folder; /api/pull takes ORG/NAME[@REV] or an alias");
  auto job = std::make_shared<PullJob>(stream);
  ctx.pull_jobs.Add(job);
  ctx.pulls.Post([job, ref = resolved->ref, hub = *ctx.hub, name] {
    hub::PullOptions po;
    po.cancel = job->cancel_flag();
    po.progress = [&](const hub::PullProgress& p) { job->Push(ProgressLine(p)); };
    auto r = hub::Pull(ref, hub, po);
    if (!r.ok()) {
      spdlog::warn("pull {} failed: {}", name, r.status().message());
      const int status = r.status().code() == StatusCode::kNotFound ? 404 : 500;
      job->Finish(status, Json{{"error", r.status().message()}});
      return;
    }
    spdlog::info("pulled {} into {} ({} bytes downloaded)", name, r->snapshot_dir,
                 r->downloaded_bytes);
    job->Push(Json{{"status", "writing manifest"}});
    job->Finish(200, Json{{"status", "success"}});
  });
  HttpReply r;
  r.pending = job;
  r.streaming = stream;
  if (stream) r.content_type = "application/x-ndjson";
  return r;
}

HttpReply HandleOllamaDelete(const HttpRequest& req, Api::Context& ctx) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return OllamaError(body.status());
  if (!ctx.hub) return OllamaError(403, kNoHub);
  const std::string name = ReadName(*body);
  if (name.empty()) return OllamaError(400, "'model' is required");
  auto resolved = hub::ResolveModel(name, *ctx.hub);
  if (!resolved.ok())
    return OllamaError(HttpStatusOf(resolved.status()), resolved.status().message());
  if (resolved->kind == hub::ResolvedModel::Kind::kFolder)
    return OllamaError(400, "'" + name + "' is a folder; only cached models can be deleted");
  if (!resolved->present()) return OllamaError(404, "model '" + name + "' not found");
  // A loaded copy goes first; one in use keeps its files until its requests finish.
  std::string loaded;
  bool pinned = false;
  for (const auto& m : ctx.models.Loaded())  // (the list's references are gone after the loop)
    if (m->dir == resolved->dir) loaded = m->name, pinned = m->pinned;
  if (pinned) return OllamaError(409, "model '" + name + "' is being served (named at start)");
  if (!loaded.empty() && !ctx.models.Unload(loaded).ok())
    return OllamaError(409, "model '" + name + "' is in use; try again when idle");
  auto removed = hub::RemoveModel(name, *ctx.hub);
  if (!removed.ok()) return OllamaError(HttpStatusOf(removed.status()), removed.status().message());
  spdlog::info("deleted {} ({} paths)", name, removed->size());
  return JsonReply(Json::object());
}

void PullTracker::Add(const std::shared_ptr<PullJob>& job) {
  std::lock_guard<std::mutex> l(mu_);
  std::erase_if(jobs_, [](const std::weak_ptr<PullJob>& j) { return j.expired(); });
  jobs_.push_back(job);
}

void PullTracker::CancelAll() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& j : jobs_)
    if (auto job = j.lock()) job->Cancel();
}

std::vector<CachedModel> CachedModels(const Api::Context& ctx) {
  std::vector<CachedModel> out;
  if (!ctx.hub) return out;
  auto list = hub::ListModels(*ctx.hub);
  if (!list.ok()) {
    spdlog::warn("listing the model cache: {}", list.status().message());
    return out;
  }
  const auto loaded = ctx.models.Loaded();
  for (const hub::ModelInfo& m : *list) {
    bool is_loaded = false;
    for (const auto& l : loaded) is_loaded |= l->dir == m.dir;
    if (is_loaded || m.modality == "unknown") continue;
    out.push_back(CachedModel{m.name, m.dir, m.size_bytes, m.modified_unix, m.architecture,
                              m.model_type, m.modality});
  }
  return out;
}

}  // namespace tessera::server
