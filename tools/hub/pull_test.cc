// Pull against the stand-in Hub (fake_hub.h) on loopback: layout, no re-download, resume,
// corruption, unsafe names, HTTP errors, a full disk, concurrency, cancellation.
#include "tessera/hub/pull.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "fake_hub.h"
#include "runtime_libs.h"
#include "tessera/hub/models.h"
#include "tessera/hub/names.h"

namespace tessera::hub {
namespace {

namespace fs = std::filesystem;
using testing::FakeFault;
using testing::FakeFile;
using testing::FakeHub;
using testing::FakeRepo;
using testing::TinyModelRepo;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = fs::temp_directory_path() /
            ("tessera-hub-test-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(home_);
    o_.cache_dir = (home_ / "hub").string();
    o_.endpoint = hub_.endpoint();
    o_.token = "hf_secret";
    o_.max_retries = 3;
    o_.retry_base_ms = 5;
    o_.stall_timeout_s = 10;
    o_.connect_timeout_s = 5;
    repo_ = TinyModelRepo("org/tiny");
    hub_.AddRepo(repo_);
  }
  void TearDown() override { fs::remove_all(home_); }

  fs::path RepoDir() const { return fs::path(o_.cache_dir) / "models--org--tiny"; }
  fs::path Snapshot() const { return RepoDir() / "snapshots" / repo_.commit; }
  static std::string EtagOf(const FakeFile& f) {
    return f.lfs ? FakeHub::Sha256Hex(f.content) : FakeHub::GitBlobSha1(f.content);
  }
  const FakeFile& File(const std::string& path) const {
    for (const FakeFile& f : repo_.files)
      if (f.path == path) return f;
    throw std::runtime_error("no file " + path);
  }
  // Every wanted file is a relative link to its blob, with the right bytes.
  void ExpectComplete() const {
    for (const FakeFile& f : repo_.files) {
      fs::path link = Snapshot() / f.path;
      if (!IsInferenceFile(f.path)) {
        EXPECT_FALSE(fs::exists(fs::symlink_status(link))) << f.path;
        continue;
      }
      ASSERT_TRUE(fs::is_symlink(link)) << f.path;
      EXPECT_EQ(fs::read_symlink(link).string(), "../../blobs/" + EtagOf(f)) << f.path;
      EXPECT_EQ(ReadFile(link), f.content) << f.path;
    }
  }
  StatusOr<PullResult> DoPull(const std::string& name = "org/tiny", PullOptions po = {}) {
    return PullByName(name, o_, po);
  }

  static inline int counter_ = 0;
  FakeHub hub_;
  HubOptions o_;
  FakeRepo repo_;
  fs::path home_;
};

TEST_F(PullTest, FullPullMakesTheHubCacheLayout) {
  auto r = DoPull();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->snapshot_dir, Snapshot().string());
  EXPECT_EQ(r->commit, repo_.commit);
  EXPECT_EQ(ReadFile(RepoDir() / "refs" / "main"), repo_.commit);  // no newline, as the Hub
  ExpectComplete();
  int64_t wanted = 0;
  std::set<std::string> blobs;
  for (const FakeFile& f : repo_.files)
    if (IsInferenceFile(f.path)) {
      wanted += static_cast<int64_t>(f.content.size());
      blobs.insert(EtagOf(f));
      EXPECT_TRUE(fs::is_regular_file(RepoDir() / "blobs" / EtagOf(f))) << f.path;
      EXPECT_TRUE(
          fs::exists(fs::path(o_.cache_dir) / ".locks/models--org--tiny" / (EtagOf(f) + ".lock")));
    }
  EXPECT_EQ(r->downloaded_bytes, wanted);
  std::set<std::string> on_disk;
  for (const auto& e : fs::directory_iterator(RepoDir() / "blobs"))
    on_disk.insert(e.path().filename().string());
  EXPECT_EQ(on_disk, blobs);  // no .incomplete left, nothing unwanted
  EXPECT_EQ(hub_.Count("/api/models/org/tiny/revision/main?blobs=true"), 1);
  EXPECT_EQ(hub_.Count("pytorch_model.bin"), 0);
  EXPECT_EQ(hub_.Count("onnx"), 0);
}

TEST_F(PullTest, TokenGoesToTheHubButNotToTheCdnAfterARedirect) {
  ASSERT_TRUE(DoPull().ok());
  int api = 0, cdn = 0;
  for (const auto& req : hub_.Requests()) {
    if (req.target.rfind("/cdn/", 0) == 0) {
      ++cdn;
      EXPECT_EQ(req.authorization, "") << req.target;
      EXPECT_EQ(req.host.rfind("localhost:", 0), 0u);
    } else {
      ++api;
      EXPECT_EQ(req.authorization, "Bearer hf_secret") << req.target;
    }
  }
  EXPECT_EQ(cdn, 2);  // the two LFS shards
  EXPECT_GT(api, 2);
}

TEST_F(PullTest, SecondPullDownloadsNothing) {
  ASSERT_TRUE(DoPull().ok());
  hub_.ClearRequests();
  auto r = DoPull();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->downloaded_bytes, 0);
  ASSERT_EQ(hub_.Requests().size(), 1u);  // the one metadata request
  ExpectComplete();
  // Offline: no request at all.
  o_.offline = true;
  hub_.ClearRequests();
  r = DoPull();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->from_cache_only);
  EXPECT_EQ(r->snapshot_dir, Snapshot().string());
  EXPECT_TRUE(hub_.Requests().empty());
}

TEST_F(PullTest, UnreachableHubFallsBackToTheCache) {
  o_.max_retries = 0;
  o_.endpoint = "http://127.0.0.1:1";  // nothing listens there
  auto r = DoPull();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot reach"), std::string::npos) << r.status().message();
  o_.endpoint = hub_.endpoint();
  ASSERT_TRUE(DoPull().ok());
  o_.endpoint = "http://127.0.0.1:1";
  r = DoPull();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->from_cache_only);
}

TEST_F(PullTest, ResumesAfterADroppedConnectionWithARangeRequest) {
  FakeFault drop;
  drop.match = "path=model-00001";  // the CDN leg, after the /resolve/ redirect
  drop.drop_after_bytes = 100000;
  drop.times = 1;
  hub_.AddFault(drop);
  auto r = DoPull();
  ASSERT_TRUE(r.ok()) << r.status().message();
  ExpectComplete();
  std::vector<std::string> ranges;
  for (const auto& req : hub_.Requests())
    if (req.target.find("path=model-00001") != std::string::npos) ranges.push_back(req.range);
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "");
  EXPECT_EQ(ranges[1], "bytes=100000-");
}

TEST_F(PullTest, ResumesAPartialFileLeftByAnEarlierPull) {
  const FakeFile& f = File("model-00002-of-00002.safetensors");
  fs::create_directories(RepoDir() / "blobs");
  std::ofstream(RepoDir() / "blobs" / (EtagOf(f) + ".incomplete"), std::ios::binary)
      << f.content.substr(0, 5000);
  auto r = DoPull();
  ASSERT_TRUE(r.ok()) << r.status().message();
  ExpectComplete();
  bool ranged = false;
  for (const auto& req : hub_.Requests())
    ranged |=
        req.target.find("path=model-00002") != std::string::npos && req.range == "bytes=5000-";
  EXPECT_TRUE(ranged);
  EXPECT_EQ(r->downloaded_bytes + 5000, [&] {
    int64_t n = 0;
    for (const FakeFile& x : repo_.files)
      if (IsInferenceFile(x.path)) n += static_cast<int64_t>(x.content.size());
    return n;
  }());
}

TEST_F(PullTest, CorruptLfsFileIsDetectedAndNeverLinked) {
  FakeRepo bad = repo_;
  for (FakeFile& f : bad.files)
    if (f.path == "model-00001-of-00002.safetensors") {
      f.served = f.content;
      f.served[f.served.size() / 2] ^= 0x5a;  // same size, one byte flipped
    }
  hub_.AddRepo(bad);
  auto r = DoPull();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("corrupt download of model-00001-of-00002.safetensors"),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("sha256"), std::string::npos);
  const std::string etag = EtagOf(File("model-00001-of-00002.safetensors"));
  EXPECT_FALSE(fs::exists(RepoDir() / "blobs" / etag));
  EXPECT_FALSE(fs::exists(RepoDir() / "blobs" / (etag + ".incomplete")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(Snapshot() / "model-00001-of-00002.safetensors")));
  EXPECT_FALSE(fs::exists(RepoDir() / "refs" / "main"));
  hub_.AddRepo(repo_);  // the Hub serves good bytes again
  ASSERT_TRUE(DoPull().ok());
  ExpectComplete();
}

TEST_F(PullTest, CorruptRegularFileIsDetectedByItsGitBlobId) {
  FakeRepo bad = repo_;
  for (FakeFile& f : bad.files)
    if (f.path == "config.json") f.served = std::string(f.content.size(), ' ');
  hub_.AddRepo(bad);
  auto r = DoPull();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("git blob sha1"), std::string::npos) << r.status().message();
  EXPECT_FALSE(fs::exists(fs::symlink_status(Snapshot() / "config.json")));
}

TEST_F(PullTest, BadPartialFileIsDetectedAndDiscarded) {
  const FakeFile& f = File("model-00002-of-00002.safetensors");
  fs::create_directories(RepoDir() / "blobs");
  fs::path part = RepoDir() / "blobs" / (EtagOf(f) + ".incomplete");
  std::ofstream(part, std::ios::binary) << std::string(5000, 'z');
  auto r = DoPull();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("corrupt"), std::string::npos);
  EXPECT_FALSE(fs::exists(part));
  ASSERT_TRUE(DoPull().ok());  // starts that file over
  ExpectComplete();
}

class UnsafeNameTest : public PullTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(UnsafeNameTest, FileNameEscapingTheCacheIsRefused) {
  FakeRepo evil = TinyModelRepo("org/evil", 1000);
  evil.files.push_back({GetParam(), "pwned", false});
  hub_.AddRepo(evil);
  auto r = DoPull("org/evil");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("unsafe file name"), std::string::npos)
      << r.status().message();
  // Nothing at all was written, inside the cache or out of it.
  EXPECT_FALSE(fs::exists(fs::path(o_.cache_dir) / "models--org--evil"));
  for (const char* p : {"x", "x.safetensors", "hub/x"}) EXPECT_FALSE(fs::exists(home_ / p));
  EXPECT_FALSE(fs::exists("/tmp/x.safetensors.tessera-evil"));
}

INSTANTIATE_TEST_SUITE_P(Names, UnsafeNameTest,
                         ::testing::Values("../../x", "../../../x.safetensors",
                                           "/tmp/x.safetensors.tessera-evil",
                                           "a/../../../x.safetensors", "a\\..\\x.safetensors",
                                           "a//config.json", "./config.json",
                                           std::string("x\x01.json"), "1_Pooling/../../x.json"));

TEST_F(PullTest, BadCommitIdIsRefused) {
  FakeRepo evil = TinyModelRepo("org/evil2", 1000);
  evil.commit = "../../../../tmp/evil";
  hub_.AddRepo(evil);
  auto r = DoPull("org/evil2");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no commit id"), std::string::npos) << r.status().message();
}

struct HttpCase {
  int status;
  std::string code;  // X-Error-Code
  std::string expect1, expect2;
};

class HttpErrorTest : public PullTest, public ::testing::WithParamInterface<HttpCase> {};

TEST_P(HttpErrorTest, GivesAClearMessage) {
  const HttpCase& c = GetParam();
  FakeFault f;
  f.match = "/api/models/";
  f.status = c.status;
  if (!c.code.empty()) f.headers.push_back({"X-Error-Code", c.code});
  if (c.status == 429) f.headers.push_back({"Retry-After", "0"});
  hub_.AddFault(f);
  o_.token.clear();
  auto r = DoPull();
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message();
  EXPECT_NE(m.find(c.expect1), std::string::npos) << m;
  EXPECT_NE(m.find(c.expect2), std::string::npos) << m;
  EXPECT_FALSE(fs::exists(RepoDir() / "snapshots"));
}

INSTANTIATE_TEST_SUITE_P(
    Statuses, HttpErrorTest,
    ::testing::Values(HttpCase{401, "", "authentication required", "HF_TOKEN"},
                      HttpCase{401, "GatedRepo", "gated", "HF_TOKEN"},
                      HttpCase{403, "GatedRepo", "gated or private", "HF_TOKEN"},
                      HttpCase{404, "RepoNotFound", "not found", "org/tiny"},
                      HttpCase{404, "RevisionNotFound", "revision 'main'", "not found"},
                      HttpCase{429, "", "rate limited", "HTTP 429"},
                      HttpCase{500, "", "HTTP 500", "pull again later"}));

TEST_F(PullTest, UnknownRepoIsNotFound) {
  auto r = DoPull("org/missing");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("org/missing"), std::string::npos);
}

TEST_F(PullTest, TransientServerErrorsAreRetried) {
  FakeFault f;
  f.match = "model-00002";
  f.status = 503;
  f.times = 2;
  hub_.AddFault(f);
  auto r = DoPull();
  ASSERT_TRUE(r.ok()) << r.status().message();
  ExpectComplete();
}

TEST_F(PullTest, FullDiskGivesAClearErrorAndLeavesNothingCorrupt) {
  o_.workers = 1;
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child may write files of at most 150 kB: the 300 kB shard cannot fit.
    signal(SIGXFSZ, SIG_IGN);
    rlimit lim{150000, 150000};
    setrlimit(RLIMIT_FSIZE, &lim);
    auto r = DoPull();
    std::string msg = r.ok() ? "ok" : r.status().message();
    (void)!write(pipefd[1], msg.data(), msg.size());
    _exit(r.ok() ? 0 : 3);
  }
  close(pipefd[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = read(pipefd[0], buf, sizeof buf)) > 0;) msg.append(buf, n);
  close(pipefd[0]);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 3);
  EXPECT_NE(msg.find("disk full"), std::string::npos) << msg;
  // No blob or link for a file that did not fit; no ref to a half snapshot.
  for (const char* p : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
    EXPECT_FALSE(fs::exists(RepoDir() / "blobs" / EtagOf(File(p)))) << p;
    EXPECT_FALSE(fs::exists(fs::symlink_status(Snapshot() / p))) << p;
  }
  EXPECT_FALSE(fs::exists(RepoDir() / "refs" / "main"));
  // With space again the pull completes (resuming the partial file).
  auto r = DoPull();
  ASSERT_TRUE(r.ok()) << r.status().message();
  ExpectComplete();
}

TEST_F(PullTest, ConcurrentPullsOfTheSameModelBothSucceed) {
  hub_.SetChunkDelayMs(2);  // keep the transfers in flight long enough to overlap
  StatusOr<PullResult> a = InvalidArgument("not run"), b = InvalidArgument("not run");
  {
    std::jthread t1([&] { a = DoPull(); });
    std::jthread t2([&] { b = DoPull("org/tiny@main"); });
  }
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(a->snapshot_dir, b->snapshot_dir);
  ExpectComplete();
  // Each blob was downloaded once: the second pull waited on the lock and reused it.
  EXPECT_EQ(hub_.Count("path=model-00001", "GET"), 1);
  for (const auto& e : fs::directory_iterator(RepoDir() / "blobs"))
    EXPECT_EQ(e.path().extension(), "") << e.path();
}

TEST_F(PullTest, CancelStopsAndTheNextPullResumes) {
  hub_.SetChunkDelayMs(5);
  std::atomic<bool> cancel{false};
  PullOptions po;
  po.cancel = &cancel;
  po.progress = [&](const PullProgress& p) {
    // The first bytes of a shard: cancel mid-file.
    if (p.event == PullProgress::Event::kBytes && p.file_total > 100000 && p.file_done > 0)
      cancel = true;
  };
  auto r = DoPull("org/tiny", po);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cancelled"), std::string::npos) << r.status().message();
  hub_.SetChunkDelayMs(0);
  ASSERT_TRUE(DoPull().ok());
  ExpectComplete();
}

TEST_F(PullTest, ProgressAndConfirm) {
  std::vector<PullProgress> events;
  PullOptions po;
  po.progress = [&](const PullProgress& p) { events.push_back(p); };
  int64_t planned = 0;
  po.confirm = [&](const PullPlan& plan) {
    planned = plan.missing_bytes;
    EXPECT_EQ(plan.commit, repo_.commit);
    return true;
  };
  auto r = DoPull("org/tiny", po);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(planned, r->downloaded_bytes);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().event, PullProgress::Event::kPlan);
  EXPECT_EQ(events.back().event, PullProgress::Event::kDone);
  EXPECT_EQ(events.back().done, events.back().total);
  EXPECT_EQ(events.back().files_done, events.back().files_total);
  // Declining the confirmation downloads nothing.
  fs::remove_all(o_.cache_dir);
  po.confirm = [](const PullPlan&) { return false; };
  r = DoPull("org/tiny", po);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(fs::exists(RepoDir() / "blobs"));
}

TEST_F(PullTest, ListingWithoutBlobIdsFallsBackToHead) {
  FakeRepo r2 = TinyModelRepo("org/mirror", 2000);
  for (FakeFile& f : r2.files) f.hide_blob_id = true;
  hub_.AddRepo(r2);
  auto r = DoPull("org/mirror");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GT(hub_.Count("/org/mirror/resolve/", "HEAD"), 0);
  for (const FakeFile& f : r2.files)
    if (IsInferenceFile(f.path)) {
      EXPECT_EQ(ReadFile(fs::path(r->snapshot_dir) / f.path), f.content);
    }
}

TEST_F(PullTest, RevisionsGetTheirOwnRefAndSnapshot) {
  FakeRepo r2 = repo_;
  r2.revisions["refs/pr/1"] = std::string(40, 'b');
  r2.revisions["v1"] = std::string(40, 'c');
  hub_.AddRepo(r2);
  auto a = DoPull("org/tiny@v1");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(ReadFile(RepoDir() / "refs" / "v1"), std::string(40, 'c'));
  auto b = DoPull("org/tiny@refs/pr/1");
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(ReadFile(RepoDir() / "refs" / "refs" / "pr" / "1"), std::string(40, 'b'));
  EXPECT_FALSE(fs::exists(RepoDir() / "refs" / "main"));
  // A commit id needs no ref.
  auto c = DoPull("org/tiny@" + repo_.commit);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_FALSE(fs::exists(RepoDir() / "refs" / repo_.commit));
  EXPECT_EQ(c->snapshot_dir, Snapshot().string());
  // Blobs are shared between the snapshots.
  int blobs = 0;
  for (const auto& e : fs::directory_iterator(RepoDir() / "blobs")) blobs += e.is_regular_file();
  EXPECT_EQ(blobs, 8);
}

TEST_F(PullTest, RepoWithoutSafetensorsIsRefused) {
  FakeRepo old;
  old.repo = "org/old";
  old.commit = std::string(40, 'd');
  old.files = {{"config.json", "{}", false}, {"pytorch_model.bin", "weights", true}};
  hub_.AddRepo(old);
  auto r = DoPull("org/old");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no *.safetensors"), std::string::npos);
}

// HttpGet on http:// speaks HTTP itself (engine ps works where libcurl is missing).
TEST_F(PullTest, PlainHttpGetNeedsNoLibcurl) {
  auto r = HttpGet(hub_.endpoint() + "/api/models/org/tiny/revision/main", 5);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r->body;
  EXPECT_EQ(j.value("sha", ""), repo_.commit);
  EXPECT_EQ(hub_.Count("/revision/main", "GET"), 1);

  auto missing = HttpGet(hub_.endpoint() + "/api/models/org/nothing/revision/main", 5);
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_EQ(missing->status, 404);

  EXPECT_FALSE(HttpGet("http://127.0.0.1:1/api/ps", 2).ok());  // nothing listens on port 1
  EXPECT_EQ(HttpGet("http://[::1/api/ps", 2).status().code(), StatusCode::kInvalidArgument);
}

// libcurl and libcrypto come from the system at run time; this machine has both.
TEST(RuntimeLibsTest, LoadsTheSystemLibraries) {
  auto curl = internal::LoadCurl();
  ASSERT_TRUE(curl.ok()) << curl.status().ToString();
  EXPECT_GE((*curl)->version_info(CURLVERSION_NOW)->version_num, 0x075500u);
  EXPECT_TRUE(internal::LoadCrypto().ok());
  EXPECT_TRUE(internal::DownloadSupport().ok());
}

}  // namespace
}  // namespace tessera::hub
