// Ollama-compatible endpoints (Ollama's docs/api.md): /api/generate, /api/chat (NDJSON
// streaming by default), /api/tags, /api/show, /api/ps, /api/version. Errors are Ollama's
// {"error": "message"}.
#include <cmath>

#include "api_internal.h"
#include "tessera/hub/models.h"
#include "tessera/hub/names.h"

namespace tessera::server {
namespace {

Json Details(const ServedModel& m) {
  return Json{{"parent_model", ""},
              {"format", "safetensors"},
              {"family", m.family},
              {"families", Json::array({m.family})},
              {"parameter_size", ParameterSize(m.parameters)},
              {"quantization_level", "none"},
              {"architecture", m.architecture}};
}

std::string Digest(const ServedModel& m) {
  // Not a content hash: a stable id from the folder path (Ollama clients only display it).
  uint64_t h = 1469598103934665603ull;
  for (char c : m.dir) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

std::string ParameterSize(int64_t n) {
  if (n <= 0) return "";
  const char* unit = n >= 1000000000 ? "B" : n >= 1000000 ? "M" : "K";
  const double div = n >= 1000000000 ? 1e9 : n >= 1000000 ? 1e6 : 1e3;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f%s", static_cast<double>(n) / div, unit);
  return buf;
}

namespace {

// Ollama names carry a tag ("llama3.2:latest"); ours get ":latest" unless they have one.
std::string OllamaName(const std::string& name) {
  const size_t slash = name.rfind('/');
  const size_t colon = name.rfind(':');
  const bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  return tagged ? name : name + ":latest";
}

std::string Rfc3339(int64_t unix) {
  std::time_t t = static_cast<std::time_t>(unix);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Ollama's "options" object (Modelfile parameter names).
Status ReadOptions(const Json& body, const ServedModel& m, GenerationParams* p) {
  p->sampling = DefaultSampling(*m.model);
  auto it = body.find("options");
  if (it == body.end() || it->is_null()) return text::ValidateSamplingParams(p->sampling);
  if (!it->is_object()) return InvalidArgument("'options' must be an object");
  const Json& o = *it;
  text::SamplingParams& s = p->sampling;
  TSR_RETURN_IF_ERROR(ReadFloat(o, "temperature", 0, 100, &s.temperature));
  TSR_RETURN_IF_ERROR(ReadFloat(o, "top_p", 0, 1, &s.top_p));
  TSR_RETURN_IF_ERROR(ReadInt32(o, "top_k", -1, INT32_MAX, &s.top_k));
  TSR_RETURN_IF_ERROR(ReadFloat(o, "min_p", 0, 1, &s.min_p));
  TSR_RETURN_IF_ERROR(ReadFloat(o, "repeat_penalty", 1e-3, 100, &s.repetition_penalty));
  TSR_RETURN_IF_ERROR(ReadFloat(o, "presence_penalty", -2, 2, &s.presence_penalty));
  TSR_RETURN_IF_ERROR(ReadFloat(o, "frequency_penalty", -2, 2, &s.frequency_penalty));
  if (auto seed = o.find("seed"); seed != o.end() && !seed->is_null()) {
    if (!seed->is_number_integer()) return InvalidArgument("'options.seed' must be an integer");
    s.seed = static_cast<uint64_t>(seed->get<int64_t>());
  }
  int64_t num_predict = -1;
  // Ollama: -1 = infinite, -2 = fill the context; both mean "until EOS or the context is full".
  TSR_RETURN_IF_ERROR(ReadInt(o, "num_predict", -2, INT32_MAX, &num_predict));
  TSR_RETURN_IF_ERROR(CheckMaxTokens(m, num_predict));
  p->max_tokens = num_predict < 0 ? -1 : static_cast<int32_t>(num_predict);
  TSR_RETURN_IF_ERROR(ReadStop(o, "stop", &p->stop));
  return text::ValidateSamplingParams(s);
}

Status RejectUnsupported(const Json& body) {
  if (auto f = body.find("format");
      f != body.end() && !f->is_null() && !(f->is_string() && f->get<std::string>().empty()))
    return InvalidArgument(
        "'format' is not supported yet: constrained decoding (JSON mode, JSON schema) is not "
        "implemented");
  if (auto im = body.find("images"); im != body.end() && !im->is_null() && !im->empty())
    return InvalidArgument("'images' is not supported: the served model is text-only");
  return OkStatus();
}

class OllamaFormatter final : public ReplyFormatter {
 public:
  OllamaFormatter(const ServedModel& m, bool chat, std::vector<int32_t> prompt, double load_seconds)
      : model_(m), chat_(chat), prompt_(std::move(prompt)), load_seconds_(load_seconds) {}

  void OnEvent(const GenEvent& ev, std::string* out) override {
    if (ev.kind == GenEvent::Kind::kText) {
      text_ += ev.text;
      if (ev.token) {
        if (first_t_ < 0) first_t_ = ev.t;
        last_t_ = ev.t;
        generated_.push_back(ev.token->id);
      }
      if (out && !ev.text.empty())
        *out += Line(ev.text, false).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    } else if (ev.kind == GenEvent::Kind::kFinish) {
      reason_ = ev.finish_reason == "cancelled" ? "stop" : ev.finish_reason;
      error_ = ev.error;
      end_t_ = ev.t;
    }
  }

  std::string Finish(bool streaming) override {
    if (!error_.empty()) {
      Json e{{"error", error_}};
      return streaming ? e.dump() + "\n" : e.dump();
    }
    Json last = Line(streaming ? std::string() : text_, true);
    last["done_reason"] = reason_;
    if (!chat_) {
      std::vector<int32_t> context = prompt_;
      context.insert(context.end(), generated_.begin(), generated_.end());
      last["context"] = context;
    }
    auto ns = [](double s) { return static_cast<int64_t>(std::llround(s * 1e9)); };
    const double first = first_t_ < 0 ? end_t_ : first_t_;
    last["total_duration"] = ns(end_t_);
    last["load_duration"] = ns(load_seconds_);
    last["prompt_eval_count"] = prompt_.size();
    last["prompt_eval_duration"] = ns(first);
    last["eval_count"] = generated_.size();
    last["eval_duration"] = ns(std::max(0.0, last_t_ - first));
    const std::string s = last.dump(-1, ' ', false, Json::error_handler_t::replace);
    return streaming ? s + "\n" : s;
  }

  int status() const override { return error_.empty() ? 200 : 500; }

 private:
  Json Line(const std::string& text, bool done) const {
    Json j{{"model", model_.name}, {"created_at", IsoNow()}};
    if (chat_)
      j["message"] = Json{{"role", "assistant"}, {"content", text}};
    else
      j["response"] = text;
    j["done"] = done;
    return j;
  }

  const ServedModel& model_;
  const bool chat_;
  std::vector<int32_t> prompt_;
  std::vector<int32_t> generated_;
  const double load_seconds_;
  std::string text_, reason_ = "stop", error_;
  double first_t_ = -1, last_t_ = 0, end_t_ = 0;
};

// Ollama's "load the model" call (no prompt, no messages); with keep_alive 0 it unloads instead.
HttpReply LoadedReply(ModelRegistry& models, std::shared_ptr<ServedModel> m, const Json& body,
                      bool chat) {
  Json j{{"model", m->name}, {"created_at", IsoNow()}};
  if (chat)
    j["message"] = Json{{"role", "assistant"}, {"content", ""}};
  else
    j["response"] = "";
  j["done"] = true;
  j["done_reason"] = "load";
  auto ka = body.find("keep_alive");
  StatusOr<Seconds> keep = ka != body.end() && !ka->is_null() ? ParseKeepAlive(*ka) : kForever;
  if (keep.ok() && *keep == Seconds(0)) {
    const std::string name = m->name;
    m.reset();
    // Busy or pinned: it stays (a busy one goes once idle: its keep-alive is now 0).
    (void)models.Unload(name);
    j["done_reason"] = "unload";
  }
  return JsonReply(j);
}

}  // namespace

HttpReply HandleOllamaGenerate(const HttpRequest& req, ModelRegistry& models, Metrics& metrics) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return OllamaError(body.status());
  auto m = FindTextModel(models, *body, "model");
  if (!m.ok()) return OllamaError(m.status());
  if (Status st = RejectUnsupported(*body); !st.ok()) return OllamaError(st);
  GenerationParams params;
  if (Status st = ReadOptions(*body, **m, &params); !st.ok()) return OllamaError(st);
  std::string prompt, system;
  bool raw = false, stream = true;
  for (Status st : {ReadString(*body, "prompt", &prompt), ReadString(*body, "system", &system),
                    ReadBool(*body, "raw", &raw), ReadBool(*body, "stream", &stream)})
    if (!st.ok()) return OllamaError(st);
  std::vector<int32_t> context;
  if (auto c = body->find("context"); c != body->end() && !c->is_null()) {
    auto ids = ReadTokenIds(*c, "context", (*m)->model->vocab_size());
    if (!ids.ok()) return OllamaError(ids.status());
    context = std::move(ids).value();
  }
  if (prompt.empty() && context.empty())
    return LoadedReply(models, std::move(*m), *body, false);  // Ollama's "load the model" call
  const text::TextModel& model = *(*m)->model;
  StatusOr<std::vector<int32_t>> ids = std::vector<int32_t>{};
  if (raw) {
    // Raw: the prompt is the model input as written (no template); special tokens only when
    // there is no earlier context to continue.
    ids = model.tokenizer().Encode(prompt, context.empty());
  } else {
    Json messages = Json::array();
    if (!system.empty()) messages.push_back(Json{{"role", "system"}, {"content", system}});
    messages.push_back(Json{{"role", "user"}, {"content", prompt}});
    ids = ChatPromptTokens(model, messages, nullptr);
  }
  if (!ids.ok()) return OllamaError(ids.status());
  context.insert(context.end(), ids->begin(), ids->end());
  if (context.empty()) return OllamaError(400, "the prompt is empty");
  auto fmt = std::make_unique<OllamaFormatter>(**m, false, context, (*m)->load_seconds);
  return StartGeneration(*m, metrics, {context}, params, std::move(fmt), stream,
                         "application/x-ndjson", false);
}

HttpReply HandleOllamaChat(const HttpRequest& req, ModelRegistry& models, Metrics& metrics) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return OllamaError(body.status());
  auto m = FindTextModel(models, *body, "model");
  if (!m.ok()) return OllamaError(m.status());
  if (Status st = RejectUnsupported(*body); !st.ok()) return OllamaError(st);
  GenerationParams params;
  if (Status st = ReadOptions(*body, **m, &params); !st.ok()) return OllamaError(st);
  bool stream = true;
  if (Status st = ReadBool(*body, "stream", &stream); !st.ok()) return OllamaError(st);
  auto messages = body->find("messages");
  if (messages == body->end() || messages->is_null() || (messages->is_array() && messages->empty()))
    return LoadedReply(models, std::move(*m), *body, true);
  for (const auto& msg : *messages)
    if (msg.is_object() && msg.contains("images") && !msg["images"].is_null() &&
        !msg["images"].empty())
      return OllamaError(400, "'images' is not supported: the served model is text-only");
  auto tools = body->find("tools");
  auto ids =
      ChatPromptTokens(*(*m)->model, *messages, tools == body->end() ? Json(nullptr) : *tools);
  if (!ids.ok()) return OllamaError(ids.status());
  auto fmt = std::make_unique<OllamaFormatter>(**m, true, *ids, (*m)->load_seconds);
  return StartGeneration(*m, metrics, {std::move(ids).value()}, params, std::move(fmt), stream,
                         "application/x-ndjson", false);
}

HttpReply HandleOllamaTags(const Api::Context& ctx) {
  Json list = Json::array();
  auto add = [&](const ServedModel& m) {
    list.push_back(Json{{"name", OllamaName(m.name)},
                        {"model", OllamaName(m.name)},
                        {"modified_at", Rfc3339(m.created_unix)},
                        {"size", m.size_bytes},
                        {"digest", Digest(m)},
                        {"details", Details(m)}});
  };
  for (const auto& m : ctx.models.Loaded()) add(*m);
  for (const CachedModel& c : CachedModels(ctx)) {  // pulled, not loaded
    ServedModel m;
    m.name = c.name;
    m.dir = c.dir;
    m.size_bytes = c.size_bytes;
    m.created_unix = c.modified_unix;
    m.architecture = c.architecture;
    m.family = c.family;
    add(m);
  }
  return JsonReply(Json{{"models", list}});
}

namespace {

Json CapabilitiesOf(const std::string& modality) {
  if (modality == "embedding") return Json::array({"embedding"});
  if (modality == "rerank") return Json::array({"rerank"});
  return Json::array({"completion"});
}

HttpReply ShowLoaded(const ServedModel& sm) {
  const std::string arch = sm.family;
  Json info{{"general.architecture", arch},
            {"general.parameter_count", sm.parameters},
            {arch + ".context_length", sm.context_length}};
  std::string parameters;
  if (sm.model) {
    const auto& spec = sm.model->spec();
    info[arch + ".block_count"] = spec.n_layers;
    info[arch + ".embedding_length"] = spec.hidden;
    info[arch + ".attention.head_count"] = spec.n_heads;
    info[arch + ".attention.head_count_kv"] = spec.n_kv_heads;
    info[arch + ".vocab_size"] = spec.vocab;
    const text::SamplingParams s = DefaultSampling(*sm.model);
    parameters = "temperature " + Json(s.temperature).dump() + "\ntop_p " + Json(s.top_p).dump();
  } else {
    info[arch + ".embedding_length"] = sm.encoder->info().hidden;
  }
  return JsonReply(Json{{"modelfile", "FROM " + sm.dir + "\n"},
                        {"parameters", parameters},
                        {"template", ""},
                        {"details", Details(sm)},
                        {"model_info", info},
                        {"capabilities", CapabilitiesOf(sm.modality)},
                        {"modified_at", Rfc3339(sm.created_unix)}});
}

// A cached model that is not loaded: described from its files, without loading it.
HttpReply ShowCached(const hub::ModelDetails& d) {
  const std::string arch = d.info.model_type;
  ServedModel m;  // for Details()
  m.family = d.info.model_type;
  m.architecture = d.info.architecture;
  m.parameters = d.parameters;
  Json info{{"general.architecture", arch},
            {"general.parameter_count", d.parameters},
            {arch + ".context_length", d.context_length},
            {arch + ".embedding_length", d.hidden_size},
            {arch + ".block_count", d.layers},
            {arch + ".vocab_size", d.vocab_size}};
  Json reply{{"modelfile", "FROM " + d.info.dir + "\n"},
             {"parameters", ""},
             {"template", d.chat_template_head},
             {"details", Details(m)},
             {"model_info", info},
             {"capabilities", CapabilitiesOf(d.info.modality)},
             {"modified_at", Rfc3339(d.info.modified_unix)}};
  if (!d.license.empty()) reply["license"] = d.license;
  return JsonReply(reply);
}

}  // namespace

HttpReply HandleOllamaShow(const HttpRequest& req, const Api::Context& ctx) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return OllamaError(body.status());
  // Ollama accepts "model" and the older "name".
  const char* key = body->contains("model") ? "model" : "name";
  std::string name;
  if (Status st = ReadString(*body, key, &name); !st.ok()) return OllamaError(st);
  if (name.empty()) {
    const auto loaded = ctx.models.Loaded();
    if (loaded.size() == 1) return ShowLoaded(*loaded[0]);
    return OllamaError(400, "'model' is required");
  }
  if (auto m = ctx.models.FindLoaded(name)) return ShowLoaded(*m);
  if (!ctx.hub) return OllamaError(404, "model '" + name + "' not found");
  // Names only: a request never makes the server read a folder it was not given.
  auto resolved = hub::ResolveModel(name, *ctx.hub);
  if (!resolved.ok() || resolved->kind == hub::ResolvedModel::Kind::kFolder)
    return OllamaError(404, "model '" + name + "' not found");
  auto d = hub::ShowModel(name, *ctx.hub);
  if (!d.ok()) return OllamaError(404, "model '" + name + "' not found");
  return ShowCached(*d);
}

HttpReply HandleOllamaPs(ModelRegistry& models) {
  Json list = Json::array();
  for (const auto& m : models.Loaded()) {
    const int64_t running = m->scheduler ? m->scheduler->Stats().running : 0;
    // Models that stay loaded (named at start, keep_alive -1) show Ollama's "forever".
    const auto expires = models.ExpiresAt(*m);
    list.push_back(
        Json{{"name", OllamaName(m->name)},
             {"model", OllamaName(m->name)},
             {"size", m->memory_bytes},
             {"digest", Digest(*m)},
             {"details", Details(*m)},
             {"expires_at", expires ? Rfc3339(std::chrono::system_clock::to_time_t(*expires))
                                    : std::string("9999-12-31T23:59:59Z")},
             {"size_vram", 0},
             {"context_length", m->context_length},
             {"running_sequences", running}});
  }
  return JsonReply(Json{{"models", list}});
}

HttpReply HandleOllamaVersion(const std::string& version) {
  return JsonReply(Json{{"version", version}});
}

}  // namespace tessera::server
