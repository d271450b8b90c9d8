// A small libcurl client for the Hub (private to tessera_hub). One HttpClient owns one curl easy
// handle (connection reuse across requests); it is not thread-safe: use one per thread. libcurl
// is loaded at run time (runtime_libs.h): check LoadCurl() or DownloadSupport() before making one.
#ifndef TESSERA_HUB_HTTP_CLIENT_H_
#define TESSERA_HUB_HTTP_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tessera/core/status.h"
#include "tessera/hub/models.h"
#include "tessera/hub/options.h"

namespace tessera::hub::internal {

struct HttpResponse {
  // Transport: false when no complete response arrived (refused, reset, dropped mid-body,
  // stalled, cancelled, or the sink failed).
  bool complete = false;
  bool retryable = false;  // a transport failure worth another attempt
  bool cancelled = false;
  std::string transport_error;  // curl's message
  Status sink_status;           // the sink's error when it stopped the transfer
  long status = 0;              // HTTP status of the final response (after redirects)
  std::map<std::string, std::string> headers;  // final response, names lower-case
  std::string body;                            // the body when no sink took it (capped at 64 MiB)
  std::string Header(const std::string& name) const;
};

struct HttpRequest {
  std::string url;
  bool head = false;
  bool follow_redirects = true;
  bool auth = true;                  // send the token (curl drops it on other hosts)
  std::vector<std::string> headers;  // extra "Name: value" lines
  // Receives the body of a 2xx final response; a non-OK Status aborts the transfer.
  std::function<Status(long status, const char* data, size_t n)> sink;
  std::function<bool()> cancelled;  // polled during the transfer; true aborts it
};

class HttpClient {
 public:
  explicit HttpClient(const HubOptions& options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse Perform(const HttpRequest& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// GET of an http:// URL without libcurl (Boost.Beast): HTTP/1.1, no proxy, no redirects, one
// deadline of `timeout_s` for the whole exchange, body capped at 64 MiB. For local servers.
StatusOr<tessera::hub::HttpGetResult> PlainHttpGet(const std::string& url, int timeout_s);

// Percent-encodes everything but unreserved characters; keeps '/' when `keep_slash`.
std::string UrlQuote(const std::string& s, bool keep_slash);

}  // namespace tessera::hub::internal

#endif  // TESSERA_HUB_HTTP_CLIENT_H_
