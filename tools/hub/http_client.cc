#include "http_client.h"

#include <algorithm>
#include <cctype>

#include "runtime_libs.h"
#include "tessera/hub/models.h"

namespace tessera::hub::internal {
namespace {

constexpr size_t kMaxBody = 64u << 20;

struct Transfer {
  const HttpRequest* request;
  HttpResponse* response;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (the first, or one after a redirect or a 100 Continue).
    t->response->headers.clear();
    size_t sp = line.find(' ');
    t->response->status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  size_t v = colon + 1;
  while (v < line.size() && line[v] == ' ') ++v;
  t->response->headers[name] = line.substr(v);
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  const long status = t->response->status;
  if (t->request->sink && status >= 200 && status < 300) {
    Status st = t->request->sink(status, data, bytes);
    if (!st.ok()) {
      t->response->sink_status = st;
      return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    return bytes;
  }
  if (t->response->body.size() + bytes <= kMaxBody) t->response->body.append(data, bytes);
  return bytes;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->request->cancelled && t->request->cancelled() ? 1 : 0;
}

bool Retryable(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return false;
  }
}

}  // namespace

std::string HttpResponse::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

struct HttpClient::Impl {
  HubOptions options;
  const CurlApi* api = nullptr;
  CURL* curl = nullptr;
};

HttpClient::HttpClient(const HubOptions& options) : impl_(std::make_unique<Impl>()) {
  auto api = LoadCurl();
  TSR_CHECK(api.ok());  // callers check DownloadSupport() / LoadCurl() first
  impl_->api = *api;
  impl_->options = options;
  impl_->curl = impl_->api->easy_init();
  TSR_CHECK(impl_->curl != nullptr);
}

HttpClient::~HttpClient() {
  impl_->api->easy_cleanup(impl_->curl);
}

HttpResponse HttpClient::Perform(const HttpRequest& request) {
  HttpResponse response;
  Transfer t{&request, &response};
  CURL* c = impl_->curl;
  const CurlApi& api = *impl_->api;
  const HubOptions& o = impl_->options;
  api.easy_reset(c);
  api.easy_setopt(c, CURLOPT_URL, request.url.c_str());
  api.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  api.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  api.easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  api.easy_setopt(c, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  api.easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  // libcurl (>= 7.58) sends a custom Authorization header only to the host of the first URL, so
  // the token never reaches the CDN a /resolve/ URL redirects to -- as huggingface_hub drops
  // auth headers on cross-host redirects.
  api.easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
  api.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(o.connect_timeout_s));
  api.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  api.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o.stall_timeout_s));
  api.easy_setopt(c, CURLOPT_USERAGENT, o.user_agent.c_str());
  if (!o.ca_bundle.empty()) api.easy_setopt(c, CURLOPT_CAINFO, o.ca_bundle.c_str());
  if (request.head) api.easy_setopt(c, CURLOPT_NOBODY, 1L);
  api.easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
  api.easy_setopt(c, CURLOPT_HEADERDATA, &t);
  api.easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
  api.easy_setopt(c, CURLOPT_WRITEDATA, &t);
  api.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  api.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  api.easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> list(nullptr, api.slist_free_all);
  auto add = [&](const std::string& h) { list.reset(api.slist_append(list.release(), h.c_str())); };
  // Sizes and hashes are of the stored bytes: never let a proxy or server compress them.
  add("Accept-Encoding: identity");
  if (request.auth && !o.token.empty()) add("Authorization: Bearer " + o.token);
  for (const auto& h : request.headers) add(h);
  api.easy_setopt(c, CURLOPT_HTTPHEADER, list.get());
  char error[CURL_ERROR_SIZE] = {0};
  api.easy_setopt(c, CURLOPT_ERRORBUFFER, error);

  CURLcode rc = api.easy_perform(c);
  api.easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  if (rc == CURLE_OK) {
    response.complete = true;
    long code = 0;
    api.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code) response.status = code;
    return response;
  }
  response.cancelled = rc == CURLE_ABORTED_BY_CALLBACK;
  response.retryable = Retryable(rc);
  response.transport_error = error[0] ? error : api.easy_strerror(rc);
  return response;
}

std::string UrlQuote(const std::string& s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace tessera::hub::internal

namespace tessera::hub {

StatusOr<HttpGetResult> HttpGet(const std::string& url, int timeout_s) {
  // Plain http (a local server, for `engine ps`) needs no libcurl.
  if (url.rfind("http://", 0) == 0) return internal::PlainHttpGet(url, timeout_s);
  TSR_RETURN_IF_ERROR(internal::LoadCurl().status());
  HubOptions o;
  o.connect_timeout_s = timeout_s;
  o.stall_timeout_s = timeout_s;
  internal::HttpClient http(o);
  internal::HttpRequest req;
  req.url = url;
  req.auth = false;
  internal::HttpResponse r = http.Perform(req);
  if (!r.complete) return FailedPrecondition("cannot reach " + url + ": " + r.transport_error);
  return HttpGetResult{r.status, r.body};
}

}  // namespace tessera::hub
