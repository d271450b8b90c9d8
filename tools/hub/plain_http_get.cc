// PlainHttpGet: `engine ps` asks a running server over loopback http. That must work where the
// system has no libcurl (which is loaded only for downloads, runtime_libs.h), so it speaks HTTP/1.1
// itself through Boost.Beast, which the server already compiles in.
// clang-format off
#include <utility>  // before Boost 1.74's asio, which uses std::exchange without it
// clang-format on
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <string>

#include "http_client.h"

namespace tessera::hub::internal {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

constexpr uint64_t kMaxBody = 64u << 20;

struct PlainUrl {
  std::string host;  // without the brackets of an IPv6 literal
  std::string port = "80";
  std::string target = "/";
};

// http://HOST[:PORT][/PATH]; HOST may be [v6-literal].
StatusOr<PlainUrl> ParsePlainUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return InvalidArgument("not an http:// URL: " + url);
  std::string rest = url.substr(scheme.size());
  PlainUrl u;
  size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    u.target = rest.substr(slash);
    rest.resize(slash);
  }
  size_t port_colon = std::string::npos;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) return InvalidArgument("bad host in " + url);
    u.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port_colon = close + 1;
  } else {
    port_colon = rest.find(':');
    u.host = rest.substr(0, port_colon);
  }
  if (port_colon != std::string::npos) u.port = rest.substr(port_colon + 1);
  if (u.host.empty() || u.port.empty()) return InvalidArgument("bad host in " + url);
  return u;
}

}  // namespace

StatusOr<HttpGetResult> PlainHttpGet(const std::string& url, int timeout_s) {
  TSR_ASSIGN_OR_RETURN(PlainUrl u, ParsePlainUrl(url));
  boost::asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(u.host, u.port, ec);
  if (ec) return FailedPrecondition("cannot reach " + url + ": " + ec.message());

  bhttp::request<bhttp::empty_body> req(bhttp::verb::get, u.target, 11);
  req.set(bhttp::field::host, u.port == "80" ? u.host : u.host + ":" + u.port);
  req.set(bhttp::field::user_agent, "tessera");
  req.set(bhttp::field::accept_encoding, "identity");
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxBody);
  beast::flat_buffer buffer;

  // Asynchronous only for the deadline: tcp_stream times out asynchronous operations alone. One
  // expiry covers connect, write and read together.
  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(timeout_s));
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    if ((ec = e)) return;
    bhttp::async_write(stream, req, [&](beast::error_code e2, size_t) {
      if ((ec = e2)) return;
      bhttp::async_read(stream, buffer, parser, [&](beast::error_code e3, size_t) { ec = e3; });
    });
  });
  ioc.run();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  if (ec) return FailedPrecondition("cannot reach " + url + ": " + ec.message());
  auto res = parser.release();
  return HttpGetResult{static_cast<long>(res.result_int()), std::move(res.body())};
}

}  // namespace tessera::hub::internal
