#include "fake_hub.h"

#include <openssl/evp.h>
#include <sys/socket.h>

#include <atomic>
// clang-format off
#include <utility>  // before Boost 1.74's asio, which uses std::exchange without it
#include <boost/asio.hpp>
// clang-format on
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

namespace tessera::hub::testing {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct FakeHub::State {
  mutable std::mutex mu;
  std::map<std::string, FakeRepo> repos;  // GUARDED_BY(mu)
  std::vector<FakeFault> faults;          // GUARDED_BY(mu)
  std::vector<FakeRequest> log;           // GUARDED_BY(mu)
  int chunk_delay_ms = 0;                 // GUARDED_BY(mu)
  int port = 0;
  std::atomic<bool> stopping{false};
  asio::io_context ioc;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread accept_thread;
  std::mutex conn_mu;
  std::vector<std::thread> conns;  // GUARDED_BY(conn_mu)
  std::vector<int> fds;            // GUARDED_BY(conn_mu), shut down on stop
};

namespace {

std::string Hex(const unsigned char* md, unsigned n) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += k[md[i] >> 4];
    s += k[md[i] & 15];
  }
  return s;
}

std::string Digest(const EVP_MD* md, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, md, nullptr);
  return Hex(out, n);
}

std::string UrlDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    out.push_back(UrlDecode(path.substr(start, end - start)));
    start = end + 1;
  }
  return out;
}

struct Reply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  long drop_after = -1;
};

Reply Error(int status, const std::string& code, const std::string& message) {
  Reply r;
  r.status = status;
  if (!code.empty()) r.headers.push_back({"X-Error-Code", code});
  r.headers.push_back({"X-Error-Message", message});
  r.body = "{\"error\": \"" + message + "\"}";
  return r;
}

// Serves `content` honouring a "bytes=N-" range.
Reply Content(const std::string& content, const std::string& range) {
  Reply r;
  size_t start = 0;
  if (range.rfind("bytes=", 0) == 0) {
    start = std::stoul(range.substr(6));
    if (start >= content.size()) {
      r.status = 416;
      r.headers.push_back({"Content-Range", "bytes */" + std::to_string(content.size())});
      return r;
    }
    r.status = 206;
    r.headers.push_back({"Content-Range", "bytes " + std::to_string(start) + "-" +
                                              std::to_string(content.size() - 1) + "/" +
                                              std::to_string(content.size())});
  }
  r.body = content.substr(start);
  r.headers.push_back({"Accept-Ranges", "bytes"});
  return r;
}

const FakeRepo* FindRepo(const FakeHub::State& s, const std::string& repo) {
  auto it = s.repos.find(repo);
  return it == s.repos.end() ? nullptr : &it->second;
}

// "" when the revision is unknown.
std::string CommitOf(const FakeRepo& r, const std::string& rev) {
  if (rev == "main" || rev == r.commit) return r.commit;
  auto it = r.revisions.find(rev);
  if (it != r.revisions.end()) return it->second;
  for (const auto& [name, commit] : r.revisions)
    if (commit == rev) return commit;
  return "";
}

Reply Listing(const FakeHub::State& s, const std::vector<std::string>& parts, bool blobs) {
  // api / models / ORG / NAME / revision / REV
  if (parts.size() != 6 || parts[4] != "revision") return Error(404, "", "no such route");
  const FakeRepo* repo = FindRepo(s, parts[2] + "/" + parts[3]);
  if (!repo) return Error(404, "RepoNotFound", "Repository not found");
  std::string commit = CommitOf(*repo, parts[5]);
  if (commit.empty()) return Error(404, "RevisionNotFound", "Invalid rev id: " + parts[5]);
  nlohmann::json siblings = nlohmann::json::array();
  for (const FakeFile& f : repo->files) {
    nlohmann::json e = {{"rfilename", f.path}};
    if (blobs && !f.hide_blob_id) {
      e["size"] = f.content.size();
      e["blobId"] = FakeHub::GitBlobSha1(f.content);
      if (f.lfs)
        e["lfs"] = {{"sha256", FakeHub::Sha256Hex(f.content)},
                    {"size", f.content.size()},
                    {"pointerSize", 134}};
    }
    siblings.push_back(e);
  }
  Reply r;
  r.body = nlohmann::json{{"id", repo->repo}, {"sha", commit}, {"siblings", siblings}}.dump();
  r.headers.push_back({"Content-Type", "application/json"});
  return r;
}

Reply Resolve(const FakeHub::State& s, const std::vector<std::string>& parts,
              const std::string& range) {
  // ORG / NAME / resolve / REV / path...
  const FakeRepo* repo = FindRepo(s, parts[0] + "/" + parts[1]);
  if (!repo) return Error(404, "RepoNotFound", "Repository not found");
  std::string commit = CommitOf(*repo, parts[3]);
  if (commit.empty()) return Error(404, "RevisionNotFound", "Invalid rev id");
  std::string path;
  for (size_t i = 4; i < parts.size(); ++i) path += (i > 4 ? "/" : "") + parts[i];
  for (const FakeFile& f : repo->files) {
    if (f.path != path) continue;
    const std::string& bytes = f.served.empty() ? f.content : f.served;
    if (f.lfs) {
      // The Hub redirects LFS files to its CDN, another host: "localhost" vs "127.0.0.1".
      Reply r;
      r.status = 302;
      std::string sha = FakeHub::Sha256Hex(f.content);
      r.headers = {{"Location",
                    "http://localhost:" + std::to_string(s.port) + "/cdn/" + sha + "?path=" + path},
                   {"X-Repo-Commit", commit},
                   {"X-Linked-Etag", "\"" + sha + "\""},
                   {"X-Linked-Size", std::to_string(f.content.size())},
                   {"ETag", "\"" + FakeHub::GitBlobSha1(f.content) + "\""}};
      return r;
    }
    Reply r = Content(bytes, range);
    r.headers.push_back({"X-Repo-Commit", commit});
    r.headers.push_back({"ETag", "\"" + FakeHub::GitBlobSha1(f.content) + "\""});
    return r;
  }
  return Error(404, "EntryNotFound", "Entry not found");
}

Reply Cdn(const FakeHub::State& s, const std::string& sha, const std::string& range) {
  for (const auto& [name, repo] : s.repos)
    for (const FakeFile& f : repo.files)
      if (f.lfs && FakeHub::Sha256Hex(f.content) == sha)
        return Content(f.served.empty() ? f.content : f.served, range);
  return Error(404, "", "no such object");
}

Reply Route(FakeHub::State& s, const std::string& method, const std::string& target,
            const std::string& range) {
  std::lock_guard<std::mutex> lock(s.mu);
  std::string path = target.substr(0, target.find('?'));
  std::string query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?'));
  long drop = -1;
  for (FakeFault& f : s.faults) {
    if (f.times == 0 || target.find(f.match) == std::string::npos) continue;
    if (f.times > 0) --f.times;
    if (f.drop_after_bytes >= 0) {
      drop = f.drop_after_bytes;
      break;
    }
    Reply r = Error(f.status, "", "injected HTTP " + std::to_string(f.status));
    for (const auto& h : f.headers) r.headers.push_back(h);
    return r;
  }
  auto parts = SplitPath(path);
  Reply r = Error(404, "", "no such route");
  if (parts.size() >= 2 && parts[0] == "api" && parts[1] == "models")
    r = Listing(s, parts, query.find("blobs=true") != std::string::npos);
  else if (parts.size() > 1 && parts[0] == "cdn")
    r = Cdn(s, parts[1], range);
  else if (parts.size() > 4 && parts[2] == "resolve")
    r = Resolve(s, parts, range);
  if (r.status == 200 || r.status == 206) r.drop_after = drop;
  (void)method;
  return r;
}

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 302: return "Found";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    default: return "Status";
  }
}

// Writes the reply; false when the connection must close (a dropped transfer).
bool Send(tcp::socket& sock, const Reply& r, bool head, int delay_ms) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + Reason(r.status) + "\r\n";
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n";
  boost::system::error_code ec;
  asio::write(sock, asio::buffer(out), ec);
  if (ec) return false;
  if (head) return true;
  size_t limit = r.drop_after >= 0 ? std::min<size_t>(r.drop_after, r.body.size()) : r.body.size();
  for (size_t off = 0; off < limit;) {
    size_t n = std::min<size_t>(16384, limit - off);
    asio::write(sock, asio::buffer(r.body.data() + off, n), ec);
    if (ec) return false;
    off += n;
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  }
  if (r.drop_after >= 0) {
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
    return false;
  }
  return true;
}

void Serve(std::shared_ptr<FakeHub::State> s, tcp::socket sock) {
  boost::beast::flat_buffer buf;
  for (;;) {
    http::request<http::string_body> req;
    boost::system::error_code ec;
    http::read(sock, buf, req, ec);
    if (ec) return;
    FakeRequest logged{std::string(req.method_string()), std::string(req.target()),
                       std::string(req[http::field::range]),
                       std::string(req[http::field::authorization]),
                       std::string(req[http::field::host])};
    int delay;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      s->log.push_back(logged);
      delay = s->chunk_delay_ms;
    }
    Reply r = Route(*s, logged.method, logged.target, logged.range);
    if (!Send(sock, r, req.method() == http::verb::head, delay)) return;
    if (!req.keep_alive()) return;
  }
}

}  // namespace

FakeHub::FakeHub() : state_(std::make_shared<State>()) {
  state_->acceptor = std::make_unique<tcp::acceptor>(
      state_->ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  port_ = state_->acceptor->local_endpoint().port();
  state_->port = port_;
  state_->accept_thread = std::thread([this] { AcceptLoop(); });
}

void FakeHub::AcceptLoop() {
  std::shared_ptr<State> s = state_;
  for (;;) {
    tcp::socket sock(s->ioc);
    boost::system::error_code ec;
    s->acceptor->accept(sock, ec);
    if (s->stopping) return;
    if (ec) continue;
    std::lock_guard<std::mutex> lock(s->conn_mu);
    s->fds.push_back(sock.native_handle());
    s->conns.emplace_back(Serve, s, std::move(sock));
  }
}

FakeHub::~FakeHub() {
  state_->stopping = true;
  {
    // Wake the blocking accept() with a connection of our own.
    boost::system::error_code ec;
    tcp::socket poke(state_->ioc);
    poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
  }
  state_->accept_thread.join();
  std::vector<std::thread> conns;
  {
    std::lock_guard<std::mutex> lock(state_->conn_mu);
    for (int fd : state_->fds) ::shutdown(fd, SHUT_RDWR);
    conns.swap(state_->conns);
  }
  for (auto& t : conns) t.join();
}

std::string FakeHub::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void FakeHub::AddRepo(const FakeRepo& repo) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->repos[repo.repo] = repo;
}

void FakeHub::AddFault(const FakeFault& fault) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->faults.push_back(fault);
}

void FakeHub::ClearFaults() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->faults.clear();
}

void FakeHub::SetChunkDelayMs(int ms) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->chunk_delay_ms = ms;
}

std::vector<FakeRequest> FakeHub::Requests() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->log;
}

int FakeHub::Count(const std::string& match, const std::string& method) const {
  int n = 0;
  for (const FakeRequest& r : Requests())
    if (r.target.find(match) != std::string::npos && (method.empty() || r.method == method)) ++n;
  return n;
}

void FakeHub::ClearRequests() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->log.clear();
}

std::string FakeHub::Sha256Hex(const std::string& data) {
  return Digest(EVP_sha256(), data);
}

std::string FakeHub::GitBlobSha1(const std::string& data) {
  std::string blob = "blob " + std::to_string(data.size());
  blob.push_back('\0');
  return Digest(EVP_sha1(), blob + data);
}

std::string SafetensorsFile(const std::string& name, const std::vector<int64_t>& shape,
                            size_t pad) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  nlohmann::json h = {{name, {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {0, n * 4}}}}};
  std::string header = h.dump();
  while (header.size() % 8) header += ' ';
  std::string out(8, '\0');
  uint64_t len = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  out += header;
  // Deterministic non-repeating bytes, so a shifted or spliced resume changes the hash.
  uint32_t x = 2463534242u ^ static_cast<uint32_t>(name.size());
  for (int64_t i = 0; i < n * 4 + static_cast<int64_t>(pad); ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out.push_back(static_cast<char>(x & 0xff));
  }
  return out;
}

FakeRepo TinyModelRepo(const std::string& repo, size_t big) {
  FakeRepo r;
  r.repo = repo;
  r.commit = FakeHub::Sha256Hex(repo).substr(0, 40);
  const int64_t n = static_cast<int64_t>(big / 4);
  nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}},
                           {"model_type", "llama"},
                           {"torch_dtype", "bfloat16"},
                           {"hidden_size", 64},
                           {"num_hidden_layers", 2},
                           {"vocab_size", 256},
                           {"max_position_embeddings", 2048}};
  nlohmann::json tok_config = {{"chat_template",
                                "{% for m in messages %}\n<|{{ m.role }}|>{{ m.content }}\n"
                                "{% endfor %}\n<|assistant|>"}};
  nlohmann::json index = {{"metadata", {{"total_size", 8 * n}}},
                          {"weight_map",
                           {{"a.weight", "model-00001-of-00002.safetensors"},
                            {"b.weight", "model-00002-of-00002.safetensors"}}}};
  r.files = {
      {"config.json", config.dump(2), false},
      {"generation_config.json", R"({"eos_token_id": 2})", false},
      {"tokenizer.json", R"({"version": "1.0", "model": {"type": "BPE"}})", false},
      {"tokenizer_config.json", tok_config.dump(), false},
      {"README.md", "---\nlicense: apache-2.0\nlanguage: en\n---\n# Tiny\n", false},
      {"model.safetensors.index.json", index.dump(), false},
      {"model-00001-of-00002.safetensors", SafetensorsFile("a.weight", {n}), true},
      {"model-00002-of-00002.safetensors", SafetensorsFile("b.weight", {n / 2, 2}), true},
      {"pytorch_model.bin", std::string(1000, 'x'), true},
      {"onnx/model.onnx", std::string(100, 'y'), true},
      {".gitattributes", "*.safetensors filter=lfs\n", false},
  };
  return r;
}

}  // namespace tessera::hub::testing
