#include "http_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <exception>
#include <limits>
#include <thread>

namespace tessera::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

// A small body with the error shape the API layer uses, for errors found before a handler runs.
std::string TransportErrorBody(const std::string& message, const std::string& code) {
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    escaped.push_back(c);
  }
  return "{\"error\":{\"message\":\"" + escaped +
         "\",\"type\":\"invalid_request_error\",\"code\":\"" + code + "\"}}";
}

// True when the peer has closed its side (EOF) or the socket failed. Data waiting to be read
// (a pipelined request) counts as alive.
bool PeerClosed(tcp::socket& socket) {
  char c;
  ssize_t n = ::recv(socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  if (n > 0) return false;
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  // Declared after what the coroutines use: ~io_context destroys suspended sessions first.
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};
  uint16_t port = 0;

  net::awaitable<void> Listen();
  net::awaitable<void> Session(tcp::socket socket);
  net::awaitable<bool> Send(beast::tcp_stream& stream, unsigned version, bool keep_alive,
                            HttpReply& reply);
  net::awaitable<bool> SendPending(beast::tcp_stream& stream, unsigned version, bool keep_alive,
                                   HttpReply& reply);
  net::awaitable<bool> SendStream(beast::tcp_stream& stream, unsigned version, bool keep_alive,
                                  HttpReply& reply);
  net::awaitable<void> Reject(beast::tcp_stream& stream, beast::flat_buffer& buffer, int status,
                              const std::string& message, const std::string& code,
                              uint64_t discard);
  HttpReply Dispatch(const HttpRequest& req);
};

HttpReply HttpServer::Impl::Dispatch(const HttpRequest& req) {
  // The HTTP boundary: nothing thrown below (std::bad_alloc, a JSON library error) may take the
  // I/O thread down.
  try {
    return handler(req);
  } catch (const std::exception& e) {
    spdlog::error("{} {}: unhandled error: {}", req.method, req.target, e.what());
    HttpReply r;
    r.status = 500;
    r.body = TransportErrorBody(std::string("internal error: ") + e.what(), "internal_error");
    return r;
  }
}

net::awaitable<void> HttpServer::Impl::Listen() {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(
        net::make_strand(ioc), net::redirect_error(net::use_awaitable, ec));
    if (stopped || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of file descriptors and the like: back off instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      net::steady_timer t(ioc, std::chrono::milliseconds(50));
      co_await t.async_wait(net::redirect_error(net::use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto ex = socket.get_executor();
    net::co_spawn(ex, Session(std::move(socket)), net::detached);
  }
}

// Answers an error found while reading a request, then closes. `discard` body bytes are read and
// dropped first (bounded by the body timeout) so the client, still sending, sees the reply
// instead of a connection reset.
net::awaitable<void> HttpServer::Impl::Reject(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                              int status, const std::string& message,
                                              const std::string& code, uint64_t discard) {
  beast::error_code ec;
  auto tok = net::redirect_error(net::use_awaitable, ec);
  uint64_t have = std::min<uint64_t>(discard, buffer.size());
  discard -= have;
  stream.expires_after(options.body_timeout);
  std::vector<char> scratch(64 * 1024);
  while (discard > 0 && !ec) {
    size_t n = co_await stream.async_read_some(
        net::buffer(scratch.data(), std::min<uint64_t>(discard, scratch.size())), tok);
    discard -= std::min<uint64_t>(discard, n);
  }
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  res.set(http::field::server, "tessera");
  res.set(http::field::content_type, "application/json");
  res.keep_alive(false);
  res.body() = TransportErrorBody(message, code);
  res.prepare_payload();
  stream.expires_after(options.write_timeout);
  ec = {};
  co_await http::async_write(stream, res, tok);
}

net::awaitable<void> HttpServer::Impl::Session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  beast::error_code ec;
  auto tok = net::redirect_error(net::use_awaitable, ec);
  while (!stopped) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(options.max_header_bytes);
    // The body limit is applied once the headers are in, where Content-Length can be read (a
    // limit hit inside the header parse leaves no length to drain the body by).
    parser.body_limit(
        std::numeric_limits<std::uint64_t>::max());  // (boost::none compares as 0 in 1.74)
    stream.expires_after(options.header_timeout);
    co_await http::async_read_header(stream, buffer, parser, tok);
    if (ec == http::error::header_limit) {
      co_await Reject(stream, buffer, 431, "the request headers are too large", "headers_too_large",
                      0);
      break;
    }
    if (ec) {
      // Timeouts (slow clients), resets, EOF between requests, or malformed HTTP: a timed-out
      // socket is already closed; a malformed request gets a 400 before the close.
      if (ec != beast::error::timeout && ec != http::error::end_of_stream &&
          ec != net::error::eof &&
          ec.category() == http::make_error_code(http::error::bad_target).category())
        co_await Reject(stream, buffer, 400, "malformed HTTP request: " + ec.message(), "bad_http",
                        0);
      break;
    }
    const auto length = parser.content_length();
    if (length && *length > options.max_body_bytes) {
      co_await Reject(stream, buffer, 413,
                      "the request body is larger than the limit of " +
                          std::to_string(options.max_body_bytes) + " bytes",
                      "body_too_large", *length <= 64 * options.max_body_bytes ? *length : 0);
      break;
    }
    parser.body_limit(options.max_body_bytes);  // chunked bodies: enforced while reading
    if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, parser.get().version()};
      stream.expires_after(options.write_timeout);
      co_await http::async_write(stream, cont, tok);
      if (ec) break;
    }
    stream.expires_after(options.body_timeout);
    if (!parser.is_done()) co_await http::async_read(stream, buffer, parser, tok);
    if (ec == http::error::body_limit) {
      co_await Reject(stream, buffer, 413,
                      "the request body is larger than the limit of " +
                          std::to_string(options.max_body_bytes) + " bytes",
                      "body_too_large", 0);
      break;
    }
    if (ec) break;
    auto& msg = parser.get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.path = req.target.substr(0, req.target.find('?'));
    req.content_type = std::string(msg[http::field::content_type]);
    req.body = std::move(msg.body());
    const bool keep_alive = msg.keep_alive();
    HttpReply reply = Dispatch(req);
    if (req.method == "HEAD") {  // Ollama's CLI probes the server with HEAD /
      reply.pending.reset();
      reply.body.clear();
    }
    const bool ok = co_await Send(stream, msg.version(), keep_alive, reply);
    if (!ok || !keep_alive) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.close();
}

net::awaitable<bool> HttpServer::Impl::Send(beast::tcp_stream& stream, unsigned version,
                                            bool keep_alive, HttpReply& reply) {
  if (reply.pending && reply.streaming)
    co_return co_await SendStream(stream, version, keep_alive, reply);
  if (reply.pending) co_return co_await SendPending(stream, version, keep_alive, reply);
  beast::error_code ec;
  http::response<http::string_body> res{static_cast<http::status>(reply.status), version};
  res.set(http::field::server, "tessera");
  res.set(http::field::content_type, reply.content_type);
  for (const auto& [k, v] : reply.headers) res.set(k, v);
  res.keep_alive(keep_alive);
  res.body() = std::move(reply.body);
  res.prepare_payload();
  stream.expires_after(options.write_timeout);
  co_await http::async_write(stream, res, net::redirect_error(net::use_awaitable, ec));
  co_return !ec;
}

namespace {

// A connection's wake-up: the producer sets `woken` and cancels the timer (both on the
// connection's strand). The flag keeps a wake-up that arrives while the connection is busy
// draining or writing, when no wait is pending for the cancel to hit: without it that output
// would sit until the next poll.
struct Wake {
  explicit Wake(const net::any_io_executor& ex) : timer(ex) {}
  net::steady_timer timer;
  bool woken = false;
};

// Sleeps until the producer wakes the connection or the poll interval passes. Returns false when
// the client has hung up.
net::awaitable<bool> WaitForOutput(beast::tcp_stream& stream, Wake& wake,
                                   std::chrono::milliseconds poll) {
  if (!wake.woken) {
    beast::error_code ec;
    wake.timer.expires_after(poll);
    co_await wake.timer.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
  wake.woken = false;
  co_return !PeerClosed(stream.socket());
}

// Ties a PendingBody to one connection for the life of a reply: the producer thread wakes the
// connection by posting onto the connection's strand (posting keeps every timer operation on
// the strand). The destructor, which also runs when a stopping server destroys a suspended
// connection, unregisters the waker (it refers to this connection's executor) and cancels the
// body unless it was completed, so the scheduler drops the sequences.
class PendingLink {
 public:
  PendingLink(beast::tcp_stream& stream, std::shared_ptr<PendingBody> body)
      : body_(std::move(body)), wake_(std::make_shared<Wake>(stream.get_executor())) {
    auto ex = stream.get_executor();
    std::weak_ptr<Wake> weak = wake_;
    body_->SetWaker([ex, weak] {
      net::post(ex, [weak] {
        if (auto w = weak.lock()) {
          w->woken = true;
          w->timer.cancel();
        }
      });
    });
  }
  ~PendingLink() {
    body_->SetWaker(nullptr);
    if (!complete_) body_->Cancel();
  }
  PendingLink(const PendingLink&) = delete;
  PendingLink& operator=(const PendingLink&) = delete;

  Wake& wake() { return *wake_; }
  void Complete() { complete_ = true; }

 private:
  std::shared_ptr<PendingBody> body_;
  std::shared_ptr<Wake> wake_;
  bool complete_ = false;
};

}  // namespace

net::awaitable<bool> HttpServer::Impl::SendPending(beast::tcp_stream& stream, unsigned version,
                                                   bool keep_alive, HttpReply& reply) {
  std::string body;
  {
    PendingLink link(stream, reply.pending);
    stream.expires_never();  // generation may take long; disconnects are polled instead
    while (!reply.pending->Drain(&body))
      if (stopped || !co_await WaitForOutput(stream, link.wake(), options.disconnect_poll))
        co_return false;
    link.Complete();
  }
  reply.status = reply.pending->final_status();
  reply.body = std::move(body);
  reply.pending.reset();
  co_return co_await Send(stream, version, keep_alive, reply);
}

net::awaitable<bool> HttpServer::Impl::SendStream(beast::tcp_stream& stream, unsigned version,
                                                  bool keep_alive, HttpReply& reply) {
  beast::error_code ec;
  auto tok = net::redirect_error(net::use_awaitable, ec);
  PendingLink link(stream, reply.pending);
  http::response<http::empty_body> res{static_cast<http::status>(reply.status), version};
  res.set(http::field::server, "tessera");
  res.set(http::field::content_type, reply.content_type);
  res.set(http::field::cache_control, "no-cache");
  for (const auto& [k, v] : reply.headers) res.set(k, v);
  res.keep_alive(keep_alive);
  res.chunked(true);
  http::response_serializer<http::empty_body> sr{res};
  stream.expires_after(options.write_timeout);
  co_await http::async_write_header(stream, sr, tok);
  while (!ec && !stopped) {
    std::string out;
    const bool done = reply.pending->Drain(&out);
    if (!out.empty()) {
      stream.expires_after(options.write_timeout);
      co_await net::async_write(stream, http::make_chunk(net::buffer(out)), tok);
      if (ec) break;
    }
    if (done) {
      link.Complete();
      stream.expires_after(options.write_timeout);
      co_await net::async_write(stream, http::make_chunk_last(), tok);
      co_return !ec;
    }
    if (!co_await WaitForOutput(stream, link.wake(), options.disconnect_poll)) break;
  }
  co_return false;  // the link cancels the body
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  Stop();
  Wait();
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                        HttpHandler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);
  beast::error_code ec;
  auto addr = net::ip::make_address(options.host, ec);
  if (ec) return InvalidArgument("'" + options.host + "' is not an IP address: " + ec.message());
  tcp::endpoint ep(addr, options.port);
  const std::string where = options.host + ":" + std::to_string(options.port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return FailedPrecondition("cannot listen on " + where + ": " + ec.message());
  impl->port = impl->acceptor.local_endpoint().port();
  Impl* raw = impl.get();
  net::co_spawn(impl->ioc, raw->Listen(), net::detached);
  const int n = std::max(1, options.threads);
  for (int i = 0; i < n; ++i) impl->threads.emplace_back([raw] { raw->ioc.run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const {
  return impl_->port;
}

void HttpServer::Stop() {
  if (impl_->stopped.exchange(true)) return;
  net::post(impl_->ioc, [raw = impl_.get()] {
    beast::error_code ec;
    raw->acceptor.close(ec);
  });
  impl_->ioc.stop();
}

void HttpServer::Wait() {
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
}

}  // namespace tessera::server
