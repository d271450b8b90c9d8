// Embedding and reranking endpoints: OpenAI POST /v1/embeddings, Ollama POST /api/embed (and the
// older /api/embeddings), and POST /v1/rerank (also /rerank) in the Jina/Cohere shape that vLLM
// serves. Requests are validated on the I/O thread; the forward passes run on the Api's worker
// threads so a large batch never stalls other connections.
#include <chrono>
#include <cmath>
#include <cstring>

#include "api_internal.h"
#include "tessera/embedding/embedding.h"
#include "tessera/rerank/rerank.h"

namespace tessera::server {
namespace {

constexpr size_t kMaxInputs = 2048;  // OpenAI's limit on inputs per request

// The model must serve `modality`; anything else is the client's mistake (400), with a hint.
StatusOr<std::shared_ptr<ServedModel>> FindEncoder(ModelRegistry& models, const Json& body,
                                                   const char* modality) {
  TSR_ASSIGN_OR_RETURN(std::shared_ptr<ServedModel> m, FindModel(models, body, "model"));
  if (m->modality != modality)
    return InvalidArgument("model '" + m->name + "' is a" +
                           (m->modality == "embedding" ? "n " : " ") + m->modality +
                           " model; it does not serve " +
                           (std::string(modality) == "embedding" ? "embeddings" : "reranking") +
                           (m->modality == "text" ? " (use /v1/chat/completions)" : ""));
  return m;
}

// Library errors about the request (wrong kind of model, over-long input, bad ids) are 400s.
Status AsClientError(const Status& st) {
  if (st.code() == StatusCode::kFailedPrecondition || st.code() == StatusCode::kOutOfRange)
    return InvalidArgument(st.message());
  return st;
}

std::string Base64(const std::vector<float>& v) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(v.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), v.data(), bytes.size());  // little-endian float32, as OpenAI sends
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t b0 = static_cast<uint8_t>(bytes[i]);
    const uint32_t b1 = i + 1 < bytes.size() ? static_cast<uint8_t>(bytes[i + 1]) : 0;
    const uint32_t b2 = i + 2 < bytes.size() ? static_cast<uint8_t>(bytes[i + 2]) : 0;
    const uint32_t n = (b0 << 16) | (b1 << 8) | b2;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// OpenAI's "input": a string, an array of strings, an array of token ids, or an array of those.
StatusOr<std::vector<embedding::EmbedInput>> ReadEmbedInputs(const Json& body, const char* key,
                                                             int64_t vocab) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null())
    return InvalidArgument(std::string("'") + key + "' is required");
  const Json& in = *it;
  std::vector<embedding::EmbedInput> inputs;
  auto add = [&](const Json& v) -> Status {
    if (v.is_string()) {
      if (v.get<std::string>().empty())
        return InvalidArgument(std::string("'") + key + "' must not contain empty strings");
      inputs.push_back(embedding::EmbedInput::Text(v.get<std::string>()));
      return OkStatus();
    }
    TSR_ASSIGN_OR_RETURN(std::vector<int32_t> ids, ReadTokenIds(v, key, vocab));
    if (ids.empty()) return InvalidArgument(std::string("'") + key + "' has an empty token list");
    inputs.push_back(embedding::EmbedInput::Ids(std::move(ids)));
    return OkStatus();
  };
  const auto bad = InvalidArgument(std::string("'") + key +
                                   "' must be a string, an array of strings, an array of token "
                                   "ids, or an array of those");
  if (in.is_string()) {
    TSR_RETURN_IF_ERROR(add(in));
  } else if (in.is_array()) {
    if (in.empty()) return InvalidArgument(std::string("'") + key + "' is empty");
    if (in[0].is_number()) {
      TSR_RETURN_IF_ERROR(add(in));
    } else {
      if (in.size() > kMaxInputs)
        return InvalidArgument("at most " + std::to_string(kMaxInputs) + " inputs per request");
      for (const Json& v : in) {
        if (!v.is_string() && !v.is_array()) return bad;
        TSR_RETURN_IF_ERROR(add(v));
      }
    }
  } else {
    return bad;
  }
  return inputs;
}

// A reply computed on a worker thread: the connection waits for it like any pending body.
class WorkerReply final : public PendingBody {
 public:
  void SetWaker(std::function<void()> waker) override {
    std::function<void()> wake;
    {
      std::lock_guard<std::mutex> l(mu_);
      waker_ = std::move(waker);
      if (done_ && waker_) wake = waker_;
    }
    if (wake) wake();
  }
  bool Drain(std::string* out) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!done_) return false;
    *out = body_;
    return true;
  }
  void Cancel() override { cancelled_.store(true); }
  int final_status() const override {
    std::lock_guard<std::mutex> l(mu_);
    return status_;
  }
  bool cancelled() const { return cancelled_.load(); }
  void Finish(const HttpReply& r) {
    std::function<void()> wake;
    {
      std::lock_guard<std::mutex> l(mu_);
      body_ = r.body;
      status_ = r.status;
      done_ = true;
      wake = waker_;
    }
    if (wake) wake();
  }

 private:
  mutable std::mutex mu_;
  std::function<void()> waker_;
  std::string body_;
  int status_ = 200;
  bool done_ = false;
  std::atomic<bool> cancelled_{false};
};

// Runs `work` on a worker; the reply keeps `anchor` (the model) alive until it is done.
HttpReply Deferred(Api::Context& ctx, std::shared_ptr<ServedModel> anchor,
                   std::function<HttpReply()> work) {
  auto reply = std::make_shared<WorkerReply>();
  ctx.workers.Post([reply, anchor = std::move(anchor), work = std::move(work)] {
    if (reply->cancelled()) return;  // the client left while it waited
    reply->Finish(work());
  });
  HttpReply r;
  r.pending = reply;
  return r;
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

HttpReply HandleEmbeddings(const HttpRequest& req, Api::Context& ctx) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return OpenAiError(body.status());
  auto m = FindEncoder(ctx.models, *body, "embedding");
  if (!m.ok()) return OpenAiError(m.status());
  embedding::EncoderModel& model = *(*m)->encoder;
  auto inputs = ReadEmbedInputs(*body, "input", model.tokenizer().vocab_size());
  if (!inputs.ok()) return OpenAiError(inputs.status());
  embedding::EmbedOptions opt;
  std::string format = "float";
  for (Status st :
       {ReadInt(*body, "dimensions", 1, 1 << 20, &opt.dimensions),
        ReadString(*body, "encoding_format", &format), ReadBool(*body, "truncate", &opt.truncate)})
    if (!st.ok()) return OpenAiError(st);
  if (format != "float" && format != "base64")
    return OpenAiError(InvalidArgument("'encoding_format' must be \"float\" or \"base64\""));
  return Deferred(ctx, *m, [m = *m, inputs = std::move(inputs).value(), opt, format]() {
    auto r = embedding::Embed(*m->encoder, inputs, opt);
    if (!r.ok()) return OpenAiError(AsClientError(r.status()));
    Json data = Json::array();
    for (size_t i = 0; i < r->embeddings.size(); ++i) {
      Json e = format == "base64" ? Json(Base64(r->embeddings[i])) : Json(r->embeddings[i]);
      data.push_back(Json{{"object", "embedding"}, {"index", i}, {"embedding", std::move(e)}});
    }
    return JsonReply(
        Json{{"object", "list"},
             {"data", std::move(data)},
             {"model", m->name},
             {"usage", {{"prompt_tokens", r->total_tokens}, {"total_tokens", r->total_tokens}}}});
  });
}

HttpReply HandleOllamaEmbed(const HttpRequest& req, Api::Context& ctx, bool legacy) {
  const auto t0 = std::chrono::steady_clock::now();
  auto body = ParseObject(req.body);
  if (!body.ok()) return OllamaError(body.status());
  auto m = FindEncoder(ctx.models, *body, "embedding");
  if (!m.ok()) return OllamaError(m.status());
  embedding::EmbedOptions opt;
  opt.truncate = true;  // Ollama truncates unless told not to
  for (Status st : {ReadBool(*body, "truncate", &opt.truncate),
                    ReadInt(*body, "dimensions", 1, 1 << 20, &opt.dimensions)})
    if (!st.ok()) return OllamaError(st);
  // /api/embeddings (deprecated): {"prompt": "..."} -> {"embedding": [...]}. Both give what the
  // model's sentence-transformers configuration says (pooling, Normalize).
  auto inputs =
      ReadEmbedInputs(*body, legacy ? "prompt" : "input", (*m)->encoder->tokenizer().vocab_size());
  if (!inputs.ok()) return OllamaError(inputs.status());
  const double load = (*m)->load_seconds;
  return Deferred(ctx, *m, [m = *m, inputs = std::move(inputs).value(), opt, legacy, t0, load]() {
    auto r = embedding::Embed(*m->encoder, inputs, opt);
    if (!r.ok()) return OllamaError(AsClientError(r.status()));
    if (legacy) return JsonReply(Json{{"embedding", r->embeddings[0]}});
    auto ns = [](double s) { return static_cast<int64_t>(s * 1e9); };
    return JsonReply(Json{{"model", m->name},
                          {"embeddings", r->embeddings},
                          {"total_duration", ns(SecondsSince(t0))},
                          {"load_duration", ns(load)},
                          {"prompt_eval_count", r->total_tokens}});
  });
}

HttpReply HandleRerank(const HttpRequest& req, Api::Context& ctx) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return OpenAiError(body.status());
  auto m = FindEncoder(ctx.models, *body, "rerank");
  if (!m.ok()) return OpenAiError(m.status());
  std::string query;
  int64_t top_n = 0;
  bool return_documents = true, truncate = false;
  rerank::RerankOptions opt;
  for (Status st :
       {ReadString(*body, "query", &query), ReadInt(*body, "top_n", 0, 1 << 30, &top_n),
        ReadBool(*body, "return_documents", &return_documents),
        ReadBool(*body, "truncate", &truncate), ReadString(*body, "instruction", &opt.instruction)})
    if (!st.ok()) return OpenAiError(st);
  opt.truncate = truncate;
  if (!body->contains("query")) return OpenAiError(InvalidArgument("'query' is required"));
  auto docs_it = body->find("documents");
  if (docs_it == body->end() || !docs_it->is_array())
    return OpenAiError(
        InvalidArgument("'documents' must be an array of strings or {\"text\"} objects"));
  if (docs_it->empty()) return OpenAiError(InvalidArgument("'documents' is empty"));
  if (docs_it->size() > kMaxInputs)
    return OpenAiError(InvalidArgument("at most " + std::to_string(kMaxInputs) + " documents"));
  std::vector<std::string> docs;
  for (const Json& d : *docs_it) {
    if (d.is_string()) {
      docs.push_back(d.get<std::string>());
    } else if (d.is_object() && d.contains("text") && d["text"].is_string()) {
      docs.push_back(d["text"].get<std::string>());
    } else {
      return OpenAiError(
          InvalidArgument("'documents' must be an array of strings or {\"text\"} objects"));
    }
  }
  return Deferred(ctx, *m, [m = *m, query, docs = std::move(docs), opt, top_n, return_documents]() {
    auto r = rerank::Rerank(*m->encoder, query, docs, opt);
    if (!r.ok()) return OpenAiError(AsClientError(r.status()));
    Json results = Json::array();
    for (const auto& d : rerank::RankByScore(r->scores, static_cast<size_t>(top_n))) {
      Json j{{"index", d.index}, {"relevance_score", d.relevance_score}};
      if (return_documents) j["document"] = Json{{"text", docs[static_cast<size_t>(d.index)]}};
      results.push_back(std::move(j));
    }
    return JsonReply(Json{{"id", "rerank-" + RandomId()},
                          {"model", m->name},
                          {"results", std::move(results)},
                          {"usage", {{"total_tokens", r->total_tokens}}}});
  });
}

}  // namespace tessera::server
