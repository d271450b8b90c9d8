// The router, /health, /metrics, and the helpers every endpoint shares.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>

#include "api_internal.h"

namespace tessera::server {

// ---- Errors and replies ----

HttpReply JsonReply(const Json& body, int status) {
  HttpReply r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

HttpReply OpenAiError(int status, const std::string& message, const std::string& type,
                      const std::string& code) {
  return JsonReply(Json{{"error", {{"message", message}, {"type", type}, {"code", code}}}}, status);
}

int HttpStatusOf(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kResourceExhausted:
    case StatusCode::kFailedPrecondition: return 503;
    default: return 500;
  }
}

namespace {
void AddRetryAfter(HttpReply* r) {
  if (r->status == 503) r->headers.push_back({"Retry-After", "1"});
}
}  // namespace

HttpReply OpenAiError(const Status& s) {
  const int status = HttpStatusOf(s);
  const char* type = status == 400   ? "invalid_request_error"
                     : status == 404 ? "not_found_error"
                     : status == 503 ? "server_overloaded"
                                     : "server_error";
  const char* code = s.code() == StatusCode::kNotFound            ? "model_not_found"
                     : s.code() == StatusCode::kResourceExhausted ? "queue_full"
                     : status == 400                              ? "invalid_value"
                     : status == 503                              ? "unavailable"
                                                                  : "internal_error";
  HttpReply r = OpenAiError(status, s.message(), type, code);
  AddRetryAfter(&r);
  return r;
}

HttpReply OllamaError(int status, const std::string& message) {
  return JsonReply(Json{{"error", message}}, status);
}

HttpReply OllamaError(const Status& s) {
  HttpReply r = OllamaError(HttpStatusOf(s), s.message());
  AddRetryAfter(&r);
  return r;
}

// ---- Request parsing ----

namespace {
// Deepest bracket nesting outside strings; stops counting at `limit`.
int NestingDepth(const std::string& s, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      deepest = std::max(deepest, ++depth);
    else if (c == ']' || c == '}')
      --depth;
    if (deepest > limit) break;
  }
  return deepest;
}

const char* TypeName(const Json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

Status WrongType(const char* key, const char* want, const Json& v) {
  return InvalidArgument(std::string("'") + key + "' must be " + want + ", not " + TypeName(v));
}
}  // namespace

StatusOr<Json> ParseObject(const std::string& body) {
  constexpr int kMaxDepth = 64;
  if (body.empty()) return InvalidArgument("the request body is empty; expected a JSON object");
  if (NestingDepth(body, kMaxDepth) > kMaxDepth)
    return InvalidArgument("the request body nests deeper than " + std::to_string(kMaxDepth) +
                           " levels");
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("the request body is not valid JSON");
  if (!j.is_object())
    return InvalidArgument(std::string("the request body must be a JSON object, not ") +
                           TypeName(j));
  return j;
}

Status ReadBool(const Json& o, const char* key, bool* out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return OkStatus();
  if (!it->is_boolean()) return WrongType(key, "a boolean", *it);
  *out = it->get<bool>();
  return OkStatus();
}

Status ReadInt(const Json& o, const char* key, int64_t lo, int64_t hi, int64_t* out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return OkStatus();
  int64_t v = 0;
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      v = INT64_MAX;
    else
      v = it->get<int64_t>();
  } else if (it->is_number_float() && std::isfinite(it->get<double>()) &&
             it->get<double>() == std::floor(it->get<double>()) &&
             std::fabs(it->get<double>()) < 9e18) {
    v = static_cast<int64_t>(it->get<double>());
  } else {
    return WrongType(key, "an integer", *it);
  }
  if (v < lo || v > hi)
    return InvalidArgument(std::string("'") + key + "' is " + std::to_string(v) +
                           "; it must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                           "]");
  *out = v;
  return OkStatus();
}

Status ReadInt32(const Json& o, const char* key, int32_t lo, int32_t hi, int32_t* out) {
  int64_t v = *out;
  TSR_RETURN_IF_ERROR(ReadInt(o, key, lo, hi, &v));
  *out = static_cast<int32_t>(v);
  return OkStatus();
}

Status ReadFloat(const Json& o, const char* key, double lo, double hi, float* out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return OkStatus();
  if (!it->is_number()) return WrongType(key, "a number", *it);
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    return InvalidArgument(std::string("'") + key + "' is " + it->dump() + "; it must be in [" +
                           Json(lo).dump() + ", " + Json(hi).dump() + "]");
  *out = static_cast<float>(v);
  return OkStatus();
}

Status ReadString(const Json& o, const char* key, std::string* out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return OkStatus();
  if (!it->is_string()) return WrongType(key, "a string", *it);
  *out = it->get<std::string>();
  return OkStatus();
}

Status ReadStop(const Json& o, const char* key, std::vector<std::string>* out) {
  constexpr size_t kMaxStops = 16;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return OkStatus();
  if (it->is_string()) {
    *out = {it->get<std::string>()};
    return OkStatus();
  }
  if (!it->is_array()) return WrongType(key, "a string or an array of strings", *it);
  if (it->size() > kMaxStops)
    return InvalidArgument(std::string("'") + key + "' has more than 16 entries");
  out->clear();
  for (const auto& s : *it) {
    if (!s.is_string()) return WrongType(key, "a string or an array of strings", s);
    out->push_back(s.get<std::string>());
  }
  return OkStatus();
}

StatusOr<std::vector<int32_t>> ReadTokenIds(const Json& v, const char* what, int64_t vocab) {
  if (!v.is_array())
    return InvalidArgument(std::string("'") + what + "' must be an array of token ids");
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (const auto& e : v) {
    if (!e.is_number_integer())
      return InvalidArgument(std::string("'") + what + "' must hold integers, found " +
                             TypeName(e));
    if (e.is_number_unsigned() ? e.get<uint64_t>() >= static_cast<uint64_t>(vocab)
                               : (e.get<int64_t>() < 0 || e.get<int64_t>() >= vocab))
      return InvalidArgument(std::string("token id ") + e.dump() + " in '" + what +
                             "' is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    ids.push_back(static_cast<int32_t>(e.get<int64_t>()));
  }
  return ids;
}

// ---- Models, prompts ----

StatusOr<Seconds> ParseKeepAlive(const Json& v) {
  auto bad = [] {
    return InvalidArgument(
        "'keep_alive' must be a number of seconds or a duration such as \"5m\" or \"1h\"");
  };
  if (v.is_number()) {
    const double s = v.get<double>();
    if (!std::isfinite(s) || std::abs(s) > 1e9) return bad();
    return s < 0 ? kForever : Seconds(static_cast<int64_t>(s));
  }
  if (!v.is_string()) return bad();
  const std::string s = v.get<std::string>();
  if (s.empty()) return bad();
  if (s[0] == '-') return kForever;
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    char* end = nullptr;
    const double x = std::strtod(s.c_str() + i, &end);
    const size_t used = static_cast<size_t>(end - (s.c_str() + i));
    if (used == 0 || !std::isfinite(x)) return bad();
    i += used;
    if (i == s.size()) {  // a number without a unit: seconds, only on its own
      if (used != s.size()) return bad();
      total = x;
      break;
    }
    const char unit = s[i++];
    if (unit == 'm' && i < s.size() && s[i] == 's') {
      total += x / 1000;
      ++i;
    } else if (unit == 'h') {
      total += x * 3600;
    } else if (unit == 'm') {
      total += x * 60;
    } else if (unit == 's') {
      total += x;
    } else {
      return bad();
    }
  }
  if (total > 1e9) return bad();
  return Seconds(static_cast<int64_t>(total));
}

StatusOr<std::shared_ptr<ServedModel>> FindModel(ModelRegistry& models, const Json& body,
                                                 const char* key) {
  std::optional<Seconds> keep_alive;
  if (auto ka = body.find("keep_alive"); ka != body.end() && !ka->is_null()) {
    TSR_ASSIGN_OR_RETURN(keep_alive, ParseKeepAlive(*ka));
  }
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return models.Acquire("", keep_alive);
  if (!it->is_string()) return WrongType(key, "a string", *it);
  return models.Acquire(it->get<std::string>(), keep_alive);
}

StatusOr<std::shared_ptr<ServedModel>> FindTextModel(ModelRegistry& models, const Json& body,
                                                     const char* key) {
  TSR_ASSIGN_OR_RETURN(std::shared_ptr<ServedModel> m, FindModel(models, body, key));
  if (m->modality != "text")
    return InvalidArgument("model '" + m->name + "' is an " + m->modality +
                           " model; it does not generate text (use " +
                           (m->modality == "embedding" ? "/v1/embeddings" : "/v1/rerank") + ")");
  return m;
}

text::SamplingParams DefaultSampling(const text::TextModel& m) {
  text::SamplingParams p;
  const GenerationConfig& g = m.generation_config();
  const bool sample = g.do_sample.value_or(false);
  p.temperature = static_cast<float>(sample ? g.temperature.value_or(1.0) : 0.0);
  if (sample) {
    p.top_p = static_cast<float>(g.top_p.value_or(1.0));
    p.top_k = static_cast<int32_t>(g.top_k.value_or(0));
    p.min_p = static_cast<float>(g.min_p.value_or(0.0));
  }
  p.repetition_penalty = static_cast<float>(g.repetition_penalty.value_or(1.0));
  return p;
}

namespace {
// A message with its content flattened to a string (text parts joined).
StatusOr<Json> NormalizeMessage(const Json& msg, size_t index) {
  const std::string where = "messages[" + std::to_string(index) + "]";
  if (!msg.is_object()) return InvalidArgument(where + " must be an object");
  auto role = msg.find("role");
  if (role == msg.end() || !role->is_string())
    return InvalidArgument(where + ".role must be a string");
  Json out = msg;
  auto content = msg.find("content");
  if (content == msg.end() || content->is_null()) {
    out["content"] = "";
  } else if (content->is_array()) {
    std::string text;
    for (const auto& part : *content) {
      auto type = part.is_object() ? part.find("type") : part.end();
      auto t = part.is_object() ? part.find("text") : part.end();
      if (!part.is_object() || type == part.end() || *type != "text" || t == part.end() ||
          !t->is_string())
        return InvalidArgument(
            where + ".content: only {\"type\": \"text\", \"text\": ...} parts are supported");
      text += t->get<std::string>();
    }
    out["content"] = text;
  } else if (!content->is_string()) {
    return InvalidArgument(where + ".content must be a string or an array of text parts");
  }
  return out;
}
}  // namespace

StatusOr<std::vector<int32_t>> ChatPromptTokens(const text::TextModel& m, const Json& messages,
                                                const Json& tools) {
  if (!messages.is_array() || messages.empty())
    return InvalidArgument("'messages' must be a non-empty array");
  Json normalized = Json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    TSR_ASSIGN_OR_RETURN(Json msg, NormalizeMessage(messages[i], i));
    normalized.push_back(std::move(msg));
  }
  const text::ChatTemplate* t = m.chat_template();
  if (!t) {
    std::string joined;
    for (const auto& msg : normalized)
      joined += (joined.empty() ? "" : "\n") + msg["content"].get<std::string>();
    return m.tokenizer().Encode(joined, true);
  }
  text::ChatTemplateInputs in;
  in.messages = normalized;
  if (tools.is_array() && !tools.empty()) in.tools = tools;
  in.add_generation_prompt = true;
  in.bos_token = t->bos_token();
  in.eos_token = t->eos_token();
  auto rendered = t->Apply(in);
  if (!rendered.ok())
    return InvalidArgument("the chat template failed: " + rendered.status().message());
  // The template holds the special tokens it wants: encode without adding more.
  return m.tokenizer().Encode(*rendered, false);
}

std::string TokenText(const text::Tokenizer& tok, int32_t id) {
  auto s = tok.Decode(std::span<const int32_t>(&id, 1), false);
  return s.ok() ? *s : std::string();
}

Status CheckMaxTokens(const ServedModel& m, int64_t max_tokens) {
  const int64_t ctx = m.scheduler->max_context();
  if (max_tokens > ctx)
    return InvalidArgument("max_tokens is " + std::to_string(max_tokens) +
                           " but the model's context holds " + std::to_string(ctx) + " tokens");
  return OkStatus();
}

HttpReply StartGeneration(const std::shared_ptr<ServedModel>& served, Metrics& metrics,
                          const std::vector<std::vector<int32_t>>& prompts,
                          const GenerationParams& params, std::unique_ptr<ReplyFormatter> formatter,
                          bool stream, const std::string& stream_content_type, bool openai_errors) {
  const int32_t sequences = static_cast<int32_t>(prompts.size()) * params.n;
  ServedModel& m = *served;
  auto job = std::make_shared<GenerationJob>(std::move(formatter), sequences, stream);
  job->set_anchor(served);  // the model stays loaded until the reply is out
  Status st = SubmitJob(*m.scheduler, *m.model, &m.latency, job, prompts, params);
  if (!st.ok()) {
    metrics.CountRejected(st.code() == StatusCode::kResourceExhausted ? "queue_full"
                          : st.code() == StatusCode::kInvalidArgument ? "invalid"
                                                                      : "unavailable");
    return openai_errors ? OpenAiError(st) : OllamaError(st);
  }
  HttpReply r;
  r.pending = job;
  r.streaming = stream;
  if (stream) r.content_type = stream_content_type;
  return r;
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string IsoNow() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[96];
  std::snprintf(out, sizeof(out), "%s.%06lldZ", buf, static_cast<long long>(us % 1000000));
  return out;
}

std::string RandomId() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  uint64_t v = rng();
  for (int i = 0; i < 16; ++i, v >>= 4) s.push_back(kHex[v & 15]);
  return s;
}

// ---- Router ----

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < threads; ++i)
    threads_.emplace_back([this] {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // stopping, nothing left
        std::function<void()> task = std::move(tasks_.front());
        tasks_.pop_front();
        lock.unlock();
        task();
        lock.lock();
      }
    });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

Api::Api(std::string version)
    : version_(std::move(version)),
      workers_(std::make_unique<WorkerPool>(2)),
      pulls_(std::make_unique<WorkerPool>(4)),
      pull_jobs_(std::make_unique<PullTracker>()) {}

Api::~Api() = default;

void Api::StopWorkers() {
  pull_jobs_->CancelAll();  // downloads stop; their partial files stay resumable
  pulls_.reset();
  workers_.reset();
}

void Api::SetReady(ModelRegistry* models) {
  models_ = models;
  ready_.store(true, std::memory_order_release);
}

HttpReply Api::Handle(const HttpRequest& req) {
  std::string endpoint = "other";
  HttpReply r = Route(req, &endpoint);
  metrics_.CountRequest(endpoint, r.status);
  spdlog::debug("{} {} -> {}", req.method, req.target, r.status);
  return r;
}

HttpReply Api::Route(const HttpRequest& req, std::string* endpoint) {
  const std::string& p = req.path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool post = req.method == "POST";
  const bool ready = ready_.load(std::memory_order_acquire);
  if (p == "/health" || p == "/healthz") {
    *endpoint = "/health";
    HttpReply r = JsonReply(Json{{"status", ready ? "ok" : "loading"}}, ready ? 200 : 503);
    if (!ready) r.headers.push_back({"Retry-After", "1"});
    return r;
  }
  if (p == "/metrics" && get) {
    *endpoint = "/metrics";
    std::vector<std::pair<std::string, batching::SchedulerStats>> stats;
    std::vector<std::pair<std::string, const ModelLatency*>> latency;
    if (ready)
      for (const auto& m : models_->Loaded()) {
        if (!m->scheduler) continue;  // embedding and rerank models have no batch scheduler
        stats.push_back({m->name, m->scheduler->Stats()});
        latency.push_back({m->name, &m->latency});
      }
    HttpReply r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_.Render(stats, latency);
    return r;
  }
  if (p == "/" && get) {
    *endpoint = "/";
    HttpReply r;
    r.content_type = "text/plain";
    r.body = "Tessera is running";
    return r;
  }
  if (p == "/api/version" && get) {
    *endpoint = p;
    return HandleOllamaVersion(version_);
  }
  struct Route {
    const char* path;
    bool is_post;
  };
  static const Route kRoutes[] = {
      {"/v1/models", false},     {"/v1/chat/completions", true}, {"/v1/completions", true},
      {"/tokenize", true},       {"/detokenize", true},          {"/api/generate", true},
      {"/api/chat", true},       {"/api/tags", false},           {"/api/show", true},
      {"/api/ps", false},        {"/v1/embeddings", true},       {"/api/embed", true},
      {"/api/embeddings", true}, {"/v1/rerank", true},           {"/rerank", true},
      {"/api/pull", true},
  };
  const bool ollama = p.rfind("/api/", 0) == 0;
  if (p == "/api/delete") {  // Ollama's only DELETE
    *endpoint = p;
    if (req.method != "DELETE") {
      HttpReply r = OllamaError(405, req.method + " is not allowed on " + p);
      r.headers.push_back({"Allow", "DELETE"});
      return r;
    }
  }
  const bool model_get = p.rfind("/v1/models/", 0) == 0 && get;
  const Route* route = nullptr;
  for (const Route& r : kRoutes)
    if (p == r.path) route = &r;
  if (!route && !model_get && p != "/api/delete") {
    return ollama ? OllamaError(404, "no endpoint " + req.method + " " + p)
                  : OpenAiError(404, "no endpoint " + req.method + " " + p, "not_found_error",
                                "unknown_endpoint");
  }
  if (p != "/api/delete") *endpoint = model_get ? "/v1/models/{id}" : route->path;
  if (route && (route->is_post ? !post : !get)) {
    HttpReply r = ollama ? OllamaError(405, req.method + " is not allowed on " + p)
                         : OpenAiError(405, req.method + " is not allowed on " + p,
                                       "invalid_request_error", "method_not_allowed");
    r.headers.push_back({"Allow", route->is_post ? "POST" : "GET"});
    return r;
  }
  if (!ready) {
    HttpReply r = ollama ? OllamaError(503, "the server is still loading its models")
                         : OpenAiError(503, "the server is still loading its models",
                                       "server_overloaded", "loading");
    r.headers.push_back({"Retry-After", "1"});
    return r;
  }
  Context ctx{*models_, metrics_, *workers_, *pulls_, *pull_jobs_, hub_ ? &*hub_ : nullptr};
  if (model_get) return HandleModelGet(*models_, p.substr(std::string("/v1/models/").size()));
  if (p == "/v1/models") return HandleModelsList(ctx);
  if (p == "/v1/chat/completions") return HandleChatCompletions(req, *models_, metrics_);
  if (p == "/v1/completions") return HandleCompletions(req, *models_, metrics_);
  if (p == "/tokenize") return HandleTokenize(req, *models_);
  if (p == "/detokenize") return HandleDetokenize(req, *models_);
  if (p == "/api/generate") return HandleOllamaGenerate(req, *models_, metrics_);
  if (p == "/api/chat") return HandleOllamaChat(req, *models_, metrics_);
  if (p == "/api/tags") return HandleOllamaTags(ctx);
  if (p == "/api/pull") return HandleOllamaPull(req, ctx);
  if (p == "/api/delete") return HandleOllamaDelete(req, ctx);
  if (p == "/api/show") return HandleOllamaShow(req, ctx);
  if (p == "/v1/embeddings") return HandleEmbeddings(req, ctx);
  if (p == "/api/embed") return HandleOllamaEmbed(req, ctx, /*legacy=*/false);
  if (p == "/api/embeddings") return HandleOllamaEmbed(req, ctx, /*legacy=*/true);
  if (p == "/v1/rerank" || p == "/rerank") return HandleRerank(req, ctx);
  return HandleOllamaPs(*models_);
}

}  // namespace tessera::server
