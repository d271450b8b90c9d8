// `engine bench-serve`: a load generator for a running `engine serve` (or any OpenAI-compatible
// server). For each concurrency level it keeps that many streaming /v1/completions requests in
// flight and reports throughput, time to first token (TTFT), inter-token latency (ITL, the gap
// between consecutive streamed chunks) and time per output token (TPOT = (E2E - TTFT) / (n - 1)),
// as vLLM's benchmark_serving does. docs/benchmarks.md shows how to run it.
//
// Prompts are random sequences of token ids (taken from the server's own tokenization of a word
// list, so every id is valid for the model) of a fixed length; every request gets a different
// sequence, so the prefix cache does not flatter the numbers. `ignore_eos` fixes the output
// length.
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"

namespace tessera::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// Network and protocol failures: the server is missing, broken or refused the request.
Status NetError(std::string m) {
  return FailedPrecondition(std::move(m));
}

struct BenchServeFlags {
  std::string url = "http://127.0.0.1:11435";
  std::string model;
  std::vector<int> concurrency = {1, 4, 16, 64};
  int requests = 0;  // per level; 0 = max(8, 2 * concurrency)
  int prompt_tokens = 128;
  int max_tokens = 64;
  uint64_t seed = 1;
  int timeout_s = 600;
  bool json = false;
};

struct Endpoint {
  std::string host, port;
};

StatusOr<Endpoint> ParseUrl(const std::string& url) {
  const std::string prefix = "http://";
  if (url.rfind(prefix, 0) != 0)
    return InvalidArgument("--url must start with http:// (got '" + url + "')");
  std::string rest = url.substr(prefix.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  Endpoint e;
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || rest.back() == ']') {
    e.host = rest;
    e.port = "80";
  } else {
    e.host = rest.substr(0, colon);
    e.port = rest.substr(colon + 1);
  }
  if (!e.host.empty() && e.host.front() == '[') e.host = e.host.substr(1, e.host.size() - 2);
  if (e.host.empty()) return InvalidArgument("--url has no host: '" + url + "'");
  return e;
}

// One connection per call: simple, and what independent clients do.
class HttpClient {
 public:
  HttpClient(Endpoint ep, int timeout_s) : ep_(std::move(ep)), timeout_s_(timeout_s) {}

  // A plain request; returns the body of a 2xx reply.
  StatusOr<std::string> Call(http::verb verb, const std::string& target, const std::string& body) {
    beast::error_code ec;
    tcp::socket sock(io_);
    TSR_RETURN_IF_ERROR(Connect(&sock));
    http::request<http::string_body> req = Request(verb, target, body);
    http::write(sock, req, ec);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    if (!ec) http::read(sock, buf, res, ec);
    if (ec) return NetError(target + ": " + ec.message());
    if (res.result_int() / 100 != 2)
      return NetError(target + ": HTTP " + std::to_string(res.result_int()) + " " + res.body());
    return res.body();
  }

  // Streams a request and calls on_data(bytes, n, arrival time) for each piece of body.
  template <typename F>
  Status Stream(const std::string& target, const std::string& body, F&& on_data) {
    beast::error_code ec;
    tcp::socket sock(io_);
    TSR_RETURN_IF_ERROR(Connect(&sock));
    http::request<http::string_body> req = Request(http::verb::post, target, body);
    http::write(sock, req, ec);
    beast::flat_buffer buf;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    if (!ec) http::read_header(sock, buf, parser, ec);
    if (ec) return NetError(target + ": " + ec.message());
    const int status = parser.get().result_int();
    char chunk[16384];
    std::string error_body;
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      http::read_some(sock, buf, parser, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return NetError(target + ": stream broke: " + ec.message());
      const size_t n = sizeof chunk - parser.get().body().size;
      if (status / 100 != 2)
        error_body.append(chunk, n);
      else if (n > 0)
        on_data(chunk, n, Clock::now());
    }
    if (status / 100 != 2)
      return NetError(target + ": HTTP " + std::to_string(status) + " " + error_body);
    return OkStatus();
  }

 private:
  Status Connect(tcp::socket* sock) {
    beast::error_code ec;
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(ep_.host, ep_.port, ec);
    if (!ec) asio::connect(*sock, results, ec);
    if (ec)
      return NetError("cannot connect to " + ep_.host + ":" + ep_.port + " (" + ec.message() +
                      "); is `engine serve` running?");
    sock->set_option(tcp::no_delay(true), ec);
    // A stalled server must not hang the benchmark: blocking reads give up after the timeout.
    timeval tv{};
    tv.tv_sec = timeout_s_;
    setsockopt(sock->native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return OkStatus();
  }

  http::request<http::string_body> Request(http::verb verb, const std::string& target,
                                           const std::string& body) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, ep_.host);
    req.set(http::field::user_agent, "tessera-bench-serve");
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    return req;
  }

  Endpoint ep_;
  int timeout_s_;
  asio::io_context io_;
};

// What one request measured.
struct RequestResult {
  bool ok = false;
  std::string error;
  double ttft_s = 0, e2e_s = 0;
  int64_t output_tokens = 0;  // from usage; else the number of streamed chunks
  std::vector<double> itl_s;  // gaps between consecutive token chunks
};

// Parses the SSE stream of /v1/completions as it arrives.
class SseTracker {
 public:
  explicit SseTracker(Clock::time_point start) : start_(start), last_(start) {}

  void Feed(const char* data, size_t n, Clock::time_point at) {
    pending_.append(data, n);
    size_t end;
    while ((end = pending_.find("\n\n")) != std::string::npos) {
      std::string event = pending_.substr(0, end);
      pending_.erase(0, end + 2);
      OnEvent(event, at);
    }
  }

  void Finish(RequestResult* r, Clock::time_point end) const {
    r->e2e_s = std::chrono::duration<double>(end - start_).count();
    r->output_tokens = usage_tokens_ > 0 ? usage_tokens_ : chunks_;
    r->ok = chunks_ > 0 && done_ && error_.empty();
    r->error = !error_.empty() ? error_ : (!done_ ? "stream ended without [DONE]" : "");
    if (chunks_ == 0 && r->error.empty()) r->error = "no tokens streamed";
  }

  double ttft_s = 0;
  std::vector<double> itl_s;

 private:
  void OnEvent(const std::string& event, Clock::time_point at) {
    if (event.rfind("data: ", 0) != 0) return;
    const std::string payload = event.substr(6);
    if (payload == "[DONE]") {
      done_ = true;
      return;
    }
    json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      error_ = "bad SSE payload: " + payload.substr(0, 200);
      return;
    }
    if (j.contains("error")) error_ = j["error"].dump();
    if (j.contains("usage") && j["usage"].is_object())
      usage_tokens_ = j["usage"].value("completion_tokens", int64_t{0});
    auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || choices->empty()) return;
    const json& c = (*choices)[0];
    if (!c.contains("text") || !c["text"].is_string() || c["text"].get<std::string>().empty())
      return;
    if (chunks_ == 0)
      ttft_s = std::chrono::duration<double>(at - start_).count();
    else
      itl_s.push_back(std::chrono::duration<double>(at - last_).count());
    last_ = at;
    ++chunks_;
  }

  Clock::time_point start_, last_;
  std::string pending_, error_;
  int64_t chunks_ = 0, usage_tokens_ = 0;
  bool done_ = false;
};

RequestResult RunOne(const Endpoint& ep, const std::string& model,
                     const std::vector<int32_t>& prompt, const BenchServeFlags& f) {
  json body = {{"model", model},
               {"prompt", prompt},
               {"max_tokens", f.max_tokens},
               {"temperature", 0},
               {"ignore_eos", true},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  RequestResult r;
  HttpClient client(ep, f.timeout_s);
  const auto start = Clock::now();
  SseTracker sse(start);
  Status st =
      client.Stream("/v1/completions", body.dump(),
                    [&](const char* d, size_t n, Clock::time_point at) { sse.Feed(d, n, at); });
  sse.Finish(&r, Clock::now());
  r.ttft_s = sse.ttft_s;
  r.itl_s = std::move(sse.itl_s);
  if (!st.ok()) {
    r.ok = false;
    r.error = st.message();
  }
  return r;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

double Mean(const std::vector<double>& v) {
  if (v.empty()) return NAN;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

struct LevelReport {
  int concurrency = 0, requests = 0, failed = 0;
  double wall_s = 0;
  int64_t output_tokens = 0, prompt_tokens = 0;
  std::vector<double> ttft, itl, tpot, e2e;
  std::string first_error;
};

LevelReport RunLevel(const Endpoint& ep, const std::string& model,
                     const std::vector<std::vector<int32_t>>& prompts, int concurrency,
                     const BenchServeFlags& f) {
  LevelReport rep;
  rep.concurrency = concurrency;
  rep.requests = static_cast<int>(prompts.size());
  std::vector<RequestResult> results(prompts.size());
  std::atomic<size_t> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < concurrency; ++c) {
    clients.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < prompts.size();)
        results[i] = RunOne(ep, model, prompts[i], f);
    });
  }
  for (auto& t : clients) t.join();
  rep.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  for (size_t i = 0; i < results.size(); ++i) {
    const RequestResult& r = results[i];
    if (!r.ok) {
      if (rep.failed++ == 0) rep.first_error = r.error;
      continue;
    }
    rep.prompt_tokens += static_cast<int64_t>(prompts[i].size());
    rep.output_tokens += r.output_tokens;
    rep.ttft.push_back(r.ttft_s);
    rep.e2e.push_back(r.e2e_s);
    rep.itl.insert(rep.itl.end(), r.itl_s.begin(), r.itl_s.end());
    if (r.output_tokens > 1)
      rep.tpot.push_back((r.e2e_s - r.ttft_s) / static_cast<double>(r.output_tokens - 1));
  }
  return rep;
}

// Valid token ids for the served model: its own tokenization of a varied word list.
StatusOr<std::vector<int32_t>> TokenPool(HttpClient& client, const std::string& model) {
  static const char* kText =
      "The quick brown fox jumps over the lazy dog while seven wizards quietly judge boxing "
      "matches. In the beginning there was light, and water, and mountains of granite; rivers "
      "carved valleys, forests grew, cities rose and fell. Numbers 0123456789, symbols (){}[]<>, "
      "and words from many fields: algebra, biology, chemistry, democracy, economics, furniture, "
      "geography, harmony, iteration, justice, kilometre, language, molecule, navigation.";
  // "t1 t2 ..." also covers the word-level vocabularies of bench/make_checkpoint.py's models.
  std::string text = kText;
  for (int i = 1; i <= 512; ++i) text += " t" + std::to_string(i);
  json body = {{"model", model}, {"prompt", text}, {"add_special_tokens", false}};
  TSR_ASSIGN_OR_RETURN(std::string reply, client.Call(http::verb::post, "/tokenize", body.dump()));
  json j = json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.contains("tokens") || !j["tokens"].is_array() || j["tokens"].empty())
    return NetError("/tokenize gave no tokens: " + reply.substr(0, 200));
  std::vector<int32_t> ids = j["tokens"].get<std::vector<int32_t>>();
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

json ReportJson(const LevelReport& r, const BenchServeFlags& f, const std::string& model) {
  auto ms = [](double s) { return std::isnan(s) ? json(nullptr) : json(s * 1e3); };
  return {{"test", "serve_c" + std::to_string(r.concurrency)},
          {"model", model},
          {"concurrency", r.concurrency},
          {"requests", r.requests},
          {"failed", r.failed},
          {"prompt_tokens", f.prompt_tokens},
          {"max_tokens", f.max_tokens},
          {"wall_s", r.wall_s},
          {"requests_per_s", (r.requests - r.failed) / r.wall_s},
          {"output_tokens_per_s", static_cast<double>(r.output_tokens) / r.wall_s},
          {"total_tokens_per_s", static_cast<double>(r.output_tokens + r.prompt_tokens) / r.wall_s},
          {"ttft_ms_p50", ms(Percentile(r.ttft, 50))},
          {"ttft_ms_p99", ms(Percentile(r.ttft, 99))},
          {"itl_ms_p50", ms(Percentile(r.itl, 50))},
          {"itl_ms_p99", ms(Percentile(r.itl, 99))},
          {"tpot_ms_mean", ms(Mean(r.tpot))},
          {"e2e_ms_p50", ms(Percentile(r.e2e, 50))}};
}

int BenchServeMain(const BenchServeFlags& f) {
  auto ep = ParseUrl(f.url);
  if (!ep.ok()) return Fail(ep.status());
  if (f.prompt_tokens < 1 || f.max_tokens < 1 || f.requests < 0)
    return Fail(InvalidArgument("--prompt-tokens and --max-tokens must be ≥ 1, --requests ≥ 0"));
  for (int c : f.concurrency)
    if (c < 1 || c > 4096) return Fail(InvalidArgument("--concurrency values must be in 1..4096"));
  HttpClient client(*ep, f.timeout_s);
  std::string model = f.model;
  if (model.empty()) {
    auto models = client.Call(http::verb::get, "/v1/models", "");
    if (!models.ok()) return Fail(models.status());
    json j = json::parse(*models, nullptr, false);
    if (j.is_discarded() || !j.contains("data") || !j["data"].is_array() || j["data"].empty())
      return Fail(NetError("/v1/models lists no model"));
    model = j["data"][0].value("id", "");
  }
  auto pool = TokenPool(client, model);
  if (!pool.ok()) return Fail(pool.status());
  std::mt19937_64 rng(f.seed);
  std::uniform_int_distribution<size_t> pick(0, pool->size() - 1);
  auto random_prompt = [&] {
    std::vector<int32_t> p(f.prompt_tokens);
    for (auto& id : p) id = (*pool)[pick(rng)];
    return p;
  };
  // One untimed request first: the server's first step of a shape builds its graph.
  RequestResult warm = RunOne(*ep, model, random_prompt(), f);
  if (!warm.ok) return Fail(NetError("warm-up request failed: " + warm.error));
  if (!f.json)
    std::printf("%-6s %5s %6s %9s %9s %9s %9s %9s %9s %9s\n", "conc", "reqs", "failed", "out t/s",
                "req/s", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99", "TPOT");
  int failed_total = 0;
  for (int c : f.concurrency) {
    const int n = f.requests > 0 ? f.requests : std::max(8, 2 * c);
    std::vector<std::vector<int32_t>> prompts(n);
    for (auto& p : prompts) p = random_prompt();
    LevelReport rep = RunLevel(*ep, model, prompts, c, f);
    failed_total += rep.failed;
    json j = ReportJson(rep, f, model);
    if (f.json) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      auto v = [&](const char* k) { return j[k].is_null() ? NAN : j[k].get<double>(); };
      std::printf("%-6d %5d %6d %9.1f %9.2f %7.1fms %7.1fms %7.1fms %7.1fms %7.1fms\n", c, n,
                  rep.failed, v("output_tokens_per_s"), v("requests_per_s"), v("ttft_ms_p50"),
                  v("ttft_ms_p99"), v("itl_ms_p50"), v("itl_ms_p99"), v("tpot_ms_mean"));
    }
    std::fflush(stdout);
    if (rep.failed > 0)
      std::fprintf(stderr, "warning: %d of %d requests at concurrency %d failed; first: %s\n",
                   rep.failed, n, c, rep.first_error.c_str());
  }
  return failed_total > 0 ? 1 : 0;
}

}  // namespace

Handler AddBenchServeCommand(CLI::App& app, GlobalFlags* /*flags*/) {
  auto f = std::make_shared<BenchServeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "bench-serve", "Load-test a running server: throughput, TTFT and ITL per concurrency level");
  cmd->add_option("--url", f->url, "Server base URL")->capture_default_str();
  cmd->add_option("--model", f->model, "Model name (default: the server's first model)");
  cmd->add_option("-c,--concurrency", f->concurrency, "Concurrency levels (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--requests", f->requests, "Requests per level (default: max(8, 2 x level))");
  cmd->add_option("--prompt-tokens", f->prompt_tokens, "Prompt length in tokens")
      ->capture_default_str();
  cmd->add_option("--max-tokens", f->max_tokens, "Generated tokens per request (EOS ignored)")
      ->capture_default_str();
  cmd->add_option("--seed", f->seed, "Seed of the random prompts")->capture_default_str();
  cmd->add_option("--timeout", f->timeout_s, "Seconds a read may stall before a request fails")
      ->capture_default_str();
  cmd->add_flag("--json", f->json, "One JSON object per level");
  return [cmd, f]() -> int {
    if (!cmd->parsed()) return -1;
    return BenchServeMain(*f);
  };
}

}  // namespace tessera::cli
