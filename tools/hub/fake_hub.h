// A stand-in for the Hugging Face Hub's HTTP API on loopback, for tests: the revision
// endpoint (/api/models/{repo}/revision/{rev}), /resolve/ downloads (LFS files redirect to a
// "CDN" on another host name, as the Hub does), Range requests, and injected faults (status
// codes, connections dropped mid-body, corrupted bytes). Every request is logged.
#ifndef TESSERA_HUB_FAKE_HUB_H_
#define TESSERA_HUB_FAKE_HUB_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tessera::hub::testing {

struct FakeFile {
  std::string path;
  std::string content;
  bool lfs = false;
  std::string served;         // if non-empty, served instead of `content` (listed hashes stay)
  bool hide_blob_id = false;  // leave size/blobId/lfs out of the listing (forces a HEAD)
};

struct FakeRepo {
  std::string repo;    // "ORG/NAME"
  std::string commit;  // 40 hex
  std::vector<FakeFile> files;
  std::map<std::string, std::string> revisions;  // extra branch/tag -> commit ("main" implied)
};

// A fault: requests whose path contains `match` get `status` (with `headers`), or, when
// `drop_after_bytes` >= 0, a 200/206 whose connection closes after that many body bytes.
// `times` < 0 = always.
struct FakeFault {
  std::string match;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  long drop_after_bytes = -1;
  int times = -1;
};

struct FakeRequest {
  std::string method, target, range, authorization, host;
};

class FakeHub {
 public:
  // Listens on 127.0.0.1 (an ephemeral port) and serves from a background thread.
  FakeHub();
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  int port() const { return port_; }
  std::string endpoint() const;  // "http://127.0.0.1:<port>"

  // Thread-safe, as are the others below.
  void AddRepo(const FakeRepo& repo);
  void AddFault(const FakeFault& fault);
  void ClearFaults();
  // Sleeps this long after each 16 KiB of body (makes transfers overlap in concurrency tests).
  void SetChunkDelayMs(int ms);

  std::vector<FakeRequest> Requests() const;
  // Requests whose target contains `match` (and whose method is `method`, if given).
  int Count(const std::string& match, const std::string& method = "") const;
  void ClearRequests();

  static std::string Sha256Hex(const std::string& data);
  static std::string GitBlobSha1(const std::string& data);

  struct State;  // shared with the connection threads

 private:
  void AcceptLoop();
  std::shared_ptr<State> state_;
  int port_ = 0;
};

// A small, loadable-looking model: config.json (architectures, dtype, context), tokenizer
// files, a chat template, generation_config.json, README.md with a licence, two LFS safetensors
// shards with real headers and an index, plus files a pull must skip (pytorch_model.bin,
// onnx/model.onnx). `big` bytes of padding make the shards large enough to resume mid-way.
FakeRepo TinyModelRepo(const std::string& repo, size_t big = 300000);

// A safetensors file holding one F32 tensor `name` of `shape`, padded with `pad` extra bytes
// after the data.
std::string SafetensorsFile(const std::string& name, const std::vector<int64_t>& shape,
                            size_t pad = 0);

}  // namespace tessera::hub::testing

#endif  // TESSERA_HUB_FAKE_HUB_H_
