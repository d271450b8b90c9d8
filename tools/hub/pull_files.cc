// The download half of Pull: worker threads, per-blob lock files, resumable transfers into
// blobs/{etag}.incomplete, verification, and the snapshot links.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "cache_layout.h"
#include "digest.h"
#include "pull_internal.h"

namespace tessera::hub::internal {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// An open file descriptor, closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// An exclusive flock() on {cache}/.locks/models--ORG--NAME/{etag}.lock -- the lock file
// huggingface_hub's FileLock takes for the same blob, so Python and Tessera pulls exclude each
// other too. Released when the Fd closes. Polls so that cancellation is seen while waiting.
StatusOr<Fd> LockBlob(const fs::path& lock_path, const std::function<bool()>& cancelled,
                      const RepoRef& ref) {
  std::error_code ec;
  fs::create_directories(lock_path.parent_path(), ec);
  Fd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0)
    return FailedPrecondition("cannot open the lock file " + lock_path.string() + ": " +
                              std::strerror(errno));
  bool logged = false;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR)
      return FailedPrecondition("cannot lock " + lock_path.string() + ": " + std::strerror(errno));
    if (!logged) spdlog::debug("waiting for another pull holding {}", lock_path.string());
    logged = true;
    if (!SleepUnlessCancelled(50, cancelled)) return Cancelled(ref);
  }
  return fd;
}

Status WriteAll(int fd, const char* data, size_t n, const fs::path& path, const HubOptions& o) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int err = errno;
      if (err == ENOSPC || err == EFBIG || err == EDQUOT)
        return ResourceExhausted("disk full while writing " + path.string() + " (" +
                                 std::strerror(err) + "): free space under " + o.cache_dir +
                                 " or move the cache with HF_HUB_CACHE; pulling again resumes "
                                 "this file");
      return FailedPrecondition("cannot write " + path.string() + ": " + std::strerror(err));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return OkStatus();
}

// Shared by the workers of one pull.
class PullState {
 public:
  PullState(const PullPlan& plan, const HubOptions& o, const PullOptions& po)
      : plan(plan), o(o), po(po) {
    repo_dir = fs::path(o.cache_dir) / RepoFolderName(plan.ref.repo);
    lock_dir = fs::path(o.cache_dir) / ".locks" / RepoFolderName(plan.ref.repo);
    snapshot_dir = repo_dir / "snapshots" / plan.commit;
    total_ = plan.total_bytes;
    files_total_ = static_cast<int>(plan.files.size());
  }
  bool Cancelled() const { return stop.load() || (po.cancel && po.cancel->load()); }

  // Reports one event, filling in the running totals. `delta` bytes are added to the total.
  void Report(PullProgress::Event event, const PullFile& f, int64_t file_done, int64_t delta,
              const std::string& message = "") {
    std::lock_guard<std::mutex> lock(mu_);
    done_ += delta;
    if (event == PullProgress::Event::kFileDone) ++files_done_;
    if (!po.progress) return;
    if (event == PullProgress::Event::kBytes) {
      // At most ~10 reports a second per file: a progress bar needs no more.
      auto now = Clock::now();
      auto& last = last_report_[f.path];
      if (now - last < std::chrono::milliseconds(100)) return;
      last = now;
    }
    PullProgress p;
    p.event = event;
    p.file = f.path;
    p.etag = f.etag;
    p.file_done = file_done;
    p.file_total = f.size;
    p.done = done_;
    p.total = total_;
    p.files_done = files_done_;
    p.files_total = files_total_;
    p.message = message;
    po.progress(p);
  }
  void ReportGlobal(PullProgress::Event event) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!po.progress) return;
    PullProgress p;
    p.event = event;
    p.done = done_;
    p.total = total_;
    p.files_done = files_done_;
    p.files_total = files_total_;
    po.progress(p);
  }

  const PullPlan& plan;
  const HubOptions& o;
  const PullOptions& po;
  fs::path repo_dir, lock_dir, snapshot_dir;
  std::atomic<bool> stop{false};  // the first failure stops the other workers
  std::atomic<int64_t> downloaded{0};

 private:
  std::mutex mu_;
  int64_t done_ = 0;                                      // GUARDED_BY(mu_)
  int64_t total_ = 0;                                     // GUARDED_BY(mu_)
  int files_done_ = 0;                                    // GUARDED_BY(mu_)
  int files_total_ = 0;                                   // GUARDED_BY(mu_)
  std::map<std::string, Clock::time_point> last_report_;  // GUARDED_BY(mu_)
};

// Checks a finished .incomplete file against the listing: size, then sha256 (LFS) or the git
// blob sha1 (others; a 64-hex ETag from a mirror is taken as a sha256).
Status Verify(const PullFile& f, const fs::path& part, const RepoRef& ref) {
  std::error_code ec;
  const int64_t size = static_cast<int64_t>(fs::file_size(part, ec));
  if (ec) return FailedPrecondition("cannot read " + part.string() + ": " + ec.message());
  const std::string where = f.path + " of " + ref.ToString();
  if (f.size >= 0 && size != f.size)
    return FailedPrecondition("corrupt download of " + where + ": " + std::to_string(size) +
                              " bytes, the Hub lists " + std::to_string(f.size) +
                              "; nothing was stored, pull again");
  std::string got, kind;
  if (f.lfs || IsHex(f.etag, 64)) {
    TSR_ASSIGN_OR_RETURN(got, FileSha256(part.string()));
    kind = "sha256";
  } else if (IsHex(f.etag, 40)) {
    TSR_ASSIGN_OR_RETURN(got, GitBlobSha1(part.string()));
    kind = "git blob sha1";
  } else {
    return OkStatus();  // an opaque mirror ETag: the size is all we can check
  }
  std::string want = f.etag;
  std::transform(want.begin(), want.end(), want.begin(), ::tolower);
  if (got != want)
    return FailedPrecondition("corrupt download of " + where + ": its " + kind + " is " + got +
                              ", the Hub lists " + want + "; nothing was stored, pull again");
  return OkStatus();
}

// One download attempt's outcome.
enum class Attempt { kDone, kRetry };

// Streams the file into `fd` from its current end (a Range request when > 0).
StatusOr<Attempt> TryDownload(HttpClient& http, PullState& s, const PullFile& f, int fd,
                              const fs::path& part, int attempt) {
  off_t offset = ::lseek(fd, 0, SEEK_END);
  if (f.size >= 0 && offset > f.size) {
    if (::ftruncate(fd, 0) != 0) return FailedPrecondition("cannot truncate " + part.string());
    offset = 0;
  }
  if (f.size >= 0 && offset == f.size) return Attempt::kDone;  // finished before a crash
  HttpRequest req;
  req.url = ResolveUrl(s.o, s.plan.ref, s.plan.commit, f.path);
  if (offset > 0) req.headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
  req.cancelled = [&s] { return s.Cancelled(); };
  int64_t file_done = offset;
  bool restarted = false;
  req.sink = [&](long status, const char* data, size_t n) -> Status {
    if (status == 200 && offset > 0 && !restarted) {
      // The server ignored the Range: start over.
      restarted = true;
      if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0)
        return FailedPrecondition("cannot truncate " + part.string());
      s.Report(PullProgress::Event::kBytes, f, 0, -file_done);
      file_done = 0;
    }
    TSR_RETURN_IF_ERROR(WriteAll(fd, data, n, part, s.o));
    file_done += static_cast<int64_t>(n);
    s.downloaded += static_cast<int64_t>(n);
    s.Report(PullProgress::Event::kBytes, f, file_done, static_cast<int64_t>(n));
    return OkStatus();
  };
  HttpResponse r = http.Perform(req);
  if (!r.sink_status.ok()) return r.sink_status;
  if (r.cancelled || s.Cancelled()) return Cancelled(s.plan.ref);
  const bool last = attempt >= s.o.max_retries;
  if (!r.complete) {
    if (!r.retryable || last) return TransportError(r, f.path, s.o);
    s.Report(PullProgress::Event::kRetry, f, file_done, 0, r.transport_error);
    spdlog::debug("{}: {}; resuming at byte {}", f.path, r.transport_error, file_done);
    return SleepUnlessCancelled(BackoffMs(s.o, attempt, r), req.cancelled)
               ? StatusOr<Attempt>(Attempt::kRetry)
               : Cancelled(s.plan.ref);
  }
  if (r.status == 416 && !last) {  // our partial file does not fit the blob: start over
    if (::ftruncate(fd, 0) != 0) return FailedPrecondition("cannot truncate " + part.string());
    s.Report(PullProgress::Event::kBytes, f, 0, -file_done);
    return Attempt::kRetry;
  }
  if ((r.status == 429 || r.status >= 500) && !last) {
    s.Report(PullProgress::Event::kRetry, f, file_done, 0, "HTTP " + std::to_string(r.status));
    return SleepUnlessCancelled(BackoffMs(s.o, attempt, r), req.cancelled)
               ? StatusOr<Attempt>(Attempt::kRetry)
               : Cancelled(s.plan.ref);
  }
  if (r.status != 200 && r.status != 206)
    return HttpStatusError(r, f.path + " of " + s.plan.ref.ToString(), s.plan.ref, s.o);
  return Attempt::kDone;
}

// Downloads one blob into blobs/{etag}. REQUIRES: the blob's lock is held.
Status DownloadBlob(HttpClient& http, PullState& s, const PullFile& f, const fs::path& blob) {
  const fs::path part = blob.string() + ".incomplete";
  std::error_code ec;
  fs::create_directories(blob.parent_path(), ec);
  Fd fd(::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0)
    return FailedPrecondition("cannot create " + part.string() + ": " + std::strerror(errno));
  const off_t resume = ::lseek(fd.get(), 0, SEEK_END);
  s.Report(PullProgress::Event::kFileStart, f, resume, resume);
  if (resume > 0) spdlog::debug("{}: resuming at byte {}", f.path, resume);
  for (int attempt = 0;; ++attempt) {
    TSR_ASSIGN_OR_RETURN(Attempt a, TryDownload(http, s, f, fd.get(), part, attempt));
    if (a == Attempt::kDone) break;
  }
  if (::fsync(fd.get()) != 0)
    return ResourceExhausted("cannot flush " + part.string() + ": " + std::strerror(errno));
  if (Status st = Verify(f, part, s.plan.ref); !st.ok()) {
    fs::remove(part, ec);  // bad bytes never stay where a resume would build on them
    return st;
  }
  fs::rename(part, blob, ec);
  if (ec)
    return FailedPrecondition("cannot move " + part.string() + " into place: " + ec.message());
  return OkStatus();
}

Status FetchOne(HttpClient& http, PullState& s, const PullFile& f) {
  const fs::path blob = s.repo_dir / "blobs" / f.etag;
  const fs::path link = s.snapshot_dir / f.path;
  // Defence in depth: ValidateRepoPath already refused anything that could escape. (The link's
  // folder is checked, not the link, which rightly points out of the snapshot into blobs/.)
  if (!IsInside(s.snapshot_dir, link.parent_path()) || !IsInside(s.repo_dir / "blobs", blob))
    return InvalidArgument("refusing to write " + f.path + " outside " + s.repo_dir.string());
  TSR_ASSIGN_OR_RETURN(
      Fd lock, LockBlob(
                   s.lock_dir / (f.etag + ".lock"), [&s] { return s.Cancelled(); }, s.plan.ref));
  std::error_code ec;
  auto size = fs::file_size(blob, ec);
  if (ec || (f.size >= 0 && static_cast<int64_t>(size) != f.size)) {
    if (!ec) fs::remove(blob, ec);  // a blob of the wrong size is not the one listed
    TSR_RETURN_IF_ERROR(DownloadBlob(http, s, f, blob));
  } else if (!f.cached) {
    // Another pull finished it while we waited for the lock.
    s.Report(PullProgress::Event::kFileStart, f, f.size, std::max<int64_t>(f.size, 0));
  }
  TSR_RETURN_IF_ERROR(SymlinkAtomic(BlobLinkTarget(f.path, f.etag), link));
  s.Report(PullProgress::Event::kFileDone, f, std::max<int64_t>(f.size, 0), 0);
  return OkStatus();
}

}  // namespace

Status FetchFiles(const PullPlan& plan, const HubOptions& o, const PullOptions& po,
                  int64_t* downloaded) {
  PullState s(plan, o, po);
  // Cached files count as done from the start.
  for (const PullFile& f : plan.files)
    if (f.cached) s.Report(PullProgress::Event::kBytes, f, 0, std::max<int64_t>(f.size, 0));
  s.ReportGlobal(PullProgress::Event::kPlan);
  std::atomic<size_t> next{0};
  std::mutex error_mu;
  Status first_error;  // GUARDED_BY(error_mu)
  auto worker = [&] {
    HttpClient http(o);  // one connection per worker, reused across its files
    for (size_t i; !s.Cancelled() && (i = next.fetch_add(1)) < plan.files.size();) {
      Status st = FetchOne(http, s, plan.files[i]);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.ok()) first_error = st;
        s.stop = true;
      }
    }
  };
  const int n = std::max(1, std::min<int>(o.workers, static_cast<int>(plan.files.size())));
  {
    std::vector<std::jthread> threads;
    for (int i = 1; i < n; ++i) threads.emplace_back(worker);
    worker();
  }
  *downloaded += s.downloaded.load();
  if (!first_error.ok()) return first_error;
  if (po.cancel && po.cancel->load()) return Cancelled(plan.ref);
  s.ReportGlobal(PullProgress::Event::kDone);
  return OkStatus();
}

}  // namespace tessera::hub::internal
