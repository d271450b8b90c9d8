// A small HTTP/1.1 server on Boost.Beast (header-only) with Asio C++20 coroutines: keep-alive,
// header/body/write timeouts, header and body size limits, chunked streaming of replies that
// are produced on another thread (the batch scheduler), and client-disconnect detection while a
// reply is pending.
//
// The server knows nothing about models: a Handler turns each request into an HttpReply, which
// is either complete or backed by a PendingBody that fills in over time.
#ifndef TESSERA_TOOLS_SERVER_HTTP_SERVER_H_
#define TESSERA_TOOLS_SERVER_HTTP_SERVER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tessera/core/status.h"

namespace tessera::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, e.g. "/v1/models"
  std::string path;    // target without the query
  std::string body;
  std::string content_type;
};

// A reply body produced elsewhere (the scheduler thread) and pulled by the connection.
// Thread-safe: producers call the waker from any thread; the connection calls Drain/Cancel.
class PendingBody {
 public:
  virtual ~PendingBody() = default;
  // The connection registers how to wake it up when new output may be ready; nullptr
  // unregisters. The waker may be called from any thread, any number of times.
  virtual void SetWaker(std::function<void()> waker) = 0;
  // Appends the output ready now to `out`; returns true once everything has been produced. For
  // a non-streaming reply `out` gets the complete body in the call that returns true.
  virtual bool Drain(std::string* out) = 0;
  // The client went away: stop producing (frees the sequences' KV blocks).
  virtual void Cancel() = 0;
  // The status of a non-streaming reply, read after Drain() returned true.
  virtual int final_status() const { return 200; }
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // the whole body when `pending` is null
  // When set: streaming replies send headers now and each Drain()ed piece as an HTTP chunk;
  // others wait for the whole body and send it with final_status().
  std::shared_ptr<PendingBody> pending;
  bool streaming = false;
};

// Called on an I/O thread for every request. Must not block for long: it delays the other
// connections on that thread.
using HttpHandler = std::function<HttpReply(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 11435;  // 0 = an ephemeral port (see HttpServer::port())
  int threads = 2;
  std::chrono::milliseconds header_timeout{10000};  // also the keep-alive idle time
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds write_timeout{60000};
  uint64_t max_body_bytes = 8u << 20;
  uint32_t max_header_bytes = 16u << 10;
  // How often a connection waiting on a pending reply checks whether its client hung up.
  std::chrono::milliseconds disconnect_poll{100};
};

class HttpServer {
 public:
  // Binds and starts the I/O threads. Errors: the address can not be bound.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                     HttpHandler handler);
  ~HttpServer();  // Stop() + Wait()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;  // the bound port
  // Stops accepting and closes every connection. Thread-safe; idempotent.
  void Stop();
  // Blocks until the I/O threads have ended.
  void Wait();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::server

#endif  // TESSERA_TOOLS_SERVER_HTTP_SERVER_H_
