// What the endpoint files share: JSON request parsing with typed errors, error replies in the
// OpenAI and Ollama shapes, model lookup, chat prompts and starting a generation job.
#ifndef TESSERA_TOOLS_SERVER_API_INTERNAL_H_
#define TESSERA_TOOLS_SERVER_API_INTERNAL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "api.h"
#include "generation.h"
#include "tessera/hub/options.h"

namespace tessera::server {

using Json = nlohmann::ordered_json;

// A few threads for work too long for an I/O thread (embedding and rerank forward passes).
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // runs what is queued, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  void Post(std::function<void()> task);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

class PullJob;  // api_models.cc

// Pulls in flight, so that a stopping server can cancel them.
class PullTracker {
 public:
  void Add(const std::shared_ptr<PullJob>& job);
  void CancelAll();

 private:
  std::mutex mu_;
  std::vector<std::weak_ptr<PullJob>> jobs_;
};

struct Api::Context {
  ModelRegistry& models;
  Metrics& metrics;
  WorkerPool& workers;  // embedding / rerank forward passes
  WorkerPool& pulls;    // downloads
  PullTracker& pull_jobs;
  const hub::HubOptions* hub;  // null: no model management
};

// A model in the Hugging Face cache that is not loaded (listed by /api/tags and /v1/models).
struct CachedModel {
  std::string name, dir;
  int64_t size_bytes = 0, modified_unix = 0;
  std::string architecture, family, modality;
};
std::vector<CachedModel> CachedModels(const Api::Context& ctx);

// {"error": {"message", "type", "code"}} (OpenAI) and {"error": "message"} (Ollama).
HttpReply OpenAiError(int status, const std::string& message, const std::string& type,
                      const std::string& code);
HttpReply OpenAiError(const Status& status);
HttpReply OllamaError(int status, const std::string& message);
HttpReply OllamaError(const Status& status);
// InvalidArgument/OutOfRange -> 400, NotFound -> 404, ResourceExhausted/FailedPrecondition -> 503,
// anything else -> 500.
int HttpStatusOf(const Status& status);

HttpReply JsonReply(const Json& body, int status = 200);

// Parses a request body that must be a JSON object (nesting depth limited, so a hostile body
// can not exhaust the stack).
StatusOr<Json> ParseObject(const std::string& body);

// Typed optional fields: absent or null leaves *out unchanged; a wrong type or a value out of
// [lo, hi] is InvalidArgument naming the field.
Status ReadBool(const Json& obj, const char* key, bool* out);
Status ReadInt(const Json& obj, const char* key, int64_t lo, int64_t hi, int64_t* out);
Status ReadInt32(const Json& obj, const char* key, int32_t lo, int32_t hi, int32_t* out);
Status ReadFloat(const Json& obj, const char* key, double lo, double hi, float* out);
Status ReadString(const Json& obj, const char* key, std::string* out);
// A string or an array of strings (OpenAI "stop").
Status ReadStop(const Json& obj, const char* key, std::vector<std::string>* out);
// A JSON array of token ids within [0, vocab).
StatusOr<std::vector<int32_t>> ReadTokenIds(const Json& value, const char* what, int64_t vocab);

// The model a request names in `key` (the only model when absent and there is just one).
// NotFound -> 404.
// Ollama's keep_alive: seconds as a number, or a Go duration ("5m", "1h30m", "45s"); negative
// means forever (kForever).
StatusOr<Seconds> ParseKeepAlive(const Json& value);
// Loads it on first use (see ModelRegistry); Ollama's "keep_alive" field is honoured.
StatusOr<std::shared_ptr<ServedModel>> FindModel(ModelRegistry& models, const Json& body,
                                                 const char* key);

// Sampling defaults from the model's generation_config.json (what transformers' generate would
// do), before the request's own fields.
text::SamplingParams DefaultSampling(const text::TextModel& model);

// Renders `messages` ([{role, content}], content a string or a list of text parts) through the
// model's chat template and tokenizes it. Without a template the contents are joined by
// newlines. Template errors are InvalidArgument.
StatusOr<std::vector<int32_t>> ChatPromptTokens(const text::TextModel& model, const Json& messages,
                                                const Json& tools);

// The text of one token as the logprobs APIs show it.
std::string TokenText(const text::Tokenizer& tokenizer, int32_t id);

// Checks max_tokens against the model context (huge values are 400s, not silent clamps).
Status CheckMaxTokens(const ServedModel& m, int64_t max_tokens);

// Submits a job and returns the streaming or pending reply, or the error reply (503 with
// Retry-After when the queue is full). `openai_errors` picks the error shape.
HttpReply StartGeneration(const std::shared_ptr<ServedModel>& m, Metrics& metrics,
                          const std::vector<std::vector<int32_t>>& prompts,
                          const GenerationParams& params, std::unique_ptr<ReplyFormatter> formatter,
                          bool stream, const std::string& stream_content_type, bool openai_errors);

int64_t UnixNow();
// RFC 3339 UTC time with microseconds ("2024-05-01T12:00:00.123456Z"), as Ollama prints.
std::string IsoNow();
// A random request id suffix.
std::string RandomId();

// Endpoints.
HttpReply HandleModelsList(const Api::Context& ctx);
HttpReply HandleModelGet(ModelRegistry& models, const std::string& id);
HttpReply HandleChatCompletions(const HttpRequest& req, ModelRegistry& models, Metrics& metrics);
HttpReply HandleCompletions(const HttpRequest& req, ModelRegistry& models, Metrics& metrics);
HttpReply HandleTokenize(const HttpRequest& req, ModelRegistry& models);
HttpReply HandleDetokenize(const HttpRequest& req, ModelRegistry& models);
HttpReply HandleOllamaGenerate(const HttpRequest& req, ModelRegistry& models, Metrics& metrics);
HttpReply HandleOllamaChat(const HttpRequest& req, ModelRegistry& models, Metrics& metrics);
HttpReply HandleOllamaTags(const Api::Context& ctx);
HttpReply HandleOllamaShow(const HttpRequest& req, const Api::Context& ctx);
// Ollama's parameter_size: "494.03M", "7.6B" ("" when unknown).
std::string ParameterSize(int64_t parameters);
HttpReply HandleOllamaPs(ModelRegistry& models);
HttpReply HandleOllamaVersion(const std::string& version);
// api_models.cc: Ollama's model management and the model lists.
HttpReply HandleOllamaPull(const HttpRequest& req, Api::Context& ctx);
HttpReply HandleOllamaDelete(const HttpRequest& req, Api::Context& ctx);
// api_encoder.cc
HttpReply HandleEmbeddings(const HttpRequest& req, Api::Context& ctx);
HttpReply HandleOllamaEmbed(const HttpRequest& req, Api::Context& ctx, bool legacy);
HttpReply HandleRerank(const HttpRequest& req, Api::Context& ctx);
// The model a text endpoint names: InvalidArgument (400) for an embedding or rerank model.
StatusOr<std::shared_ptr<ServedModel>> FindTextModel(ModelRegistry& models, const Json& body,
                                                     const char* key);

}  // namespace tessera::server

#endif  // TESSERA_TOOLS_SERVER_API_INTERNAL_H_
