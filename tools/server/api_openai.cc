// OpenAI-compatible endpoints: /v1/models, /v1/chat/completions, /v1/completions, and vLLM's
// /tokenize and /detokenize.
#include "api_internal.h"

namespace tessera::server {
namespace {

Json ModelCard(const ServedModel& m) {
  return Json{{"id", m.name},          {"object", "model"}, {"created", m.created_unix},
              {"owned_by", "tessera"}, {"root", m.dir},     {"max_model_len", m.context_length}};
}

// UTF-8 bytes of a token's text (OpenAI's "bytes" field).
Json Bytes(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// ---- Parameters ----

struct OpenAiRequest {
  GenerationParams params;
  bool stream = false;
  bool include_usage = false;
  bool echo = false;  // completions only
};

Status ReadSampling(const Json& body, text::SamplingParams* s) {
  TSR_RETURN_IF_ERROR(ReadFloat(body, "temperature", 0, 2, &s->temperature));
  TSR_RETURN_IF_ERROR(ReadFloat(body, "top_p", 0, 1, &s->top_p));
  TSR_RETURN_IF_ERROR(ReadInt32(body, "top_k", -1, INT32_MAX, &s->top_k));
  TSR_RETURN_IF_ERROR(ReadFloat(body, "min_p", 0, 1, &s->min_p));
  TSR_RETURN_IF_ERROR(ReadFloat(body, "repetition_penalty", 1e-3, 100, &s->repetition_penalty));
  TSR_RETURN_IF_ERROR(ReadFloat(body, "presence_penalty", -2, 2, &s->presence_penalty));
  TSR_RETURN_IF_ERROR(ReadFloat(body, "frequency_penalty", -2, 2, &s->frequency_penalty));
  auto seed = body.find("seed");
  if (seed != body.end() && !seed->is_null()) {
    if (!seed->is_number_integer()) return InvalidArgument("'seed' must be an integer");
    s->seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                         : static_cast<uint64_t>(seed->get<int64_t>());
  }
  return OkStatus();
}

Status ReadOpenAiRequest(const Json& body, const ServedModel& m, bool chat, OpenAiRequest* r) {
  GenerationParams& p = r->params;
  p.sampling = DefaultSampling(*m.model);
  TSR_RETURN_IF_ERROR(ReadSampling(body, &p.sampling));
  int64_t max_tokens = -1;
  TSR_RETURN_IF_ERROR(ReadInt(body, "max_tokens", 0, INT32_MAX, &max_tokens));
  if (chat) TSR_RETURN_IF_ERROR(ReadInt(body, "max_completion_tokens", 0, INT32_MAX, &max_tokens));
  TSR_RETURN_IF_ERROR(CheckMaxTokens(m, max_tokens));
  p.max_tokens = static_cast<int32_t>(max_tokens);
  TSR_RETURN_IF_ERROR(ReadStop(body, "stop", &p.stop));
  TSR_RETURN_IF_ERROR(ReadInt32(body, "n", 1, 16, &p.n));
  int32_t best_of = p.n;
  TSR_RETURN_IF_ERROR(ReadInt32(body, "best_of", 1, 16, &best_of));
  if (best_of != p.n) return InvalidArgument("'best_of' other than 'n' is not supported");
  TSR_RETURN_IF_ERROR(ReadBool(body, "ignore_eos", &p.ignore_eos));
  TSR_RETURN_IF_ERROR(ReadBool(body, "stream", &r->stream));
  if (auto so = body.find("stream_options"); so != body.end() && !so->is_null()) {
    if (!so->is_object()) return InvalidArgument("'stream_options' must be an object");
    TSR_RETURN_IF_ERROR(ReadBool(*so, "include_usage", &r->include_usage));
  }
  if (auto rf = body.find("response_format"); rf != body.end() && !rf->is_null()) {
    if (!rf->is_object()) return InvalidArgument("'response_format' must be an object");
    auto type = rf->find("type");
    if (type == rf->end() || !type->is_string())
      return InvalidArgument("'response_format.type' must be a string");
    if (*type != "text")
      return InvalidArgument("response_format '" + type->get<std::string>() +
                             "' is not supported yet: constrained decoding (JSON mode, JSON "
                             "schema) is not implemented");
  }
  if (auto lb = body.find("logit_bias"); lb != body.end() && !lb->is_null() && !lb->empty())
    return InvalidArgument("'logit_bias' is not supported yet");
  if (chat) {
    TSR_RETURN_IF_ERROR(ReadBool(body, "logprobs", &p.logprobs));
    TSR_RETURN_IF_ERROR(
        ReadInt32(body, "top_logprobs", 0, text::kMaxTopLogprobs, &p.sampling.top_logprobs));
    if (p.sampling.top_logprobs > 0 && !p.logprobs)
      return InvalidArgument("'top_logprobs' needs 'logprobs': true");
  } else {
    int32_t lp = -1;
    TSR_RETURN_IF_ERROR(ReadInt32(body, "logprobs", 0, text::kMaxTopLogprobs, &lp));
    p.logprobs = lp >= 0;
    p.sampling.top_logprobs = std::max(0, lp);
    TSR_RETURN_IF_ERROR(ReadBool(body, "echo", &r->echo));
    p.prompt_logprobs = r->echo && p.logprobs;
    if (auto suffix = body.find("suffix"); suffix != body.end() && !suffix->is_null())
      return InvalidArgument("'suffix' is not supported");
  }
  return text::ValidateSamplingParams(p.sampling);
}

// ---- Chat formatter ----

class ChatFormatter final : public ReplyFormatter {
 public:
  ChatFormatter(const ServedModel& m, int32_t choices, int64_t prompt_tokens,
                const OpenAiRequest& r)
      : model_(m), choices_(static_cast<size_t>(choices)), prompt_tokens_(prompt_tokens), req_(r) {}

  void OnEvent(const GenEvent& ev, std::string* out) override {
    Choice& c = choices_.at(static_cast<size_t>(ev.choice));
    if (ev.kind == GenEvent::Kind::kText) {
      c.text += ev.text;
      Json lp = nullptr;
      if (req_.params.logprobs && ev.token) {
        lp = Json{{"content", Json::array({Entry(*ev.token)})}};
        c.logprobs.push_back(lp["content"][0]);
      }
      if (!out || (ev.text.empty() && lp.is_null())) return;
      Json delta = Json::object();
      if (!c.role_sent) delta["role"] = "assistant";
      c.role_sent = true;
      delta["content"] = ev.text;
      *out += Chunk(Json{
          {"index", ev.choice}, {"delta", delta}, {"logprobs", lp}, {"finish_reason", nullptr}});
    } else if (ev.kind == GenEvent::Kind::kFinish) {
      c.finish = ev.finish_reason;
      c.error = ev.error;
      completion_tokens_ += ev.completion_tokens;
      if (!ev.error.empty()) failed_ = true;
      if (!out) return;
      if (!ev.error.empty()) {
        *out +=
            "data: " +
            Json{{"error",
                  {{"message", ev.error}, {"type", "server_error"}, {"code", "internal_error"}}}}
                .dump() +
            "\n\n";
        return;
      }
      Json delta = Json::object();
      if (!c.role_sent) delta["role"] = "assistant";
      c.role_sent = true;
      *out += Chunk(Json{{"index", ev.choice},
                         {"delta", delta},
                         {"logprobs", nullptr},
                         {"finish_reason", Reason(c.finish)}});
    }
  }

  std::string Finish(bool streaming) override {
    if (streaming) {
      std::string out;
      if (req_.include_usage) {
        Json chunk = Base("chat.completion.chunk");
        chunk["choices"] = Json::array();
        chunk["usage"] = Usage();
        out += "data: " + chunk.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
      }
      return out + "data: [DONE]\n\n";
    }
    if (failed_) {
      for (const Choice& c : choices_)
        if (!c.error.empty())
          return Json{
              {"error",
               {{"message", c.error}, {"type", "server_error"}, {"code", "internal_error"}}}}
              .dump();
    }
    Json body = Base("chat.completion");
    Json choices = Json::array();
    for (size_t i = 0; i < choices_.size(); ++i) {
      const Choice& c = choices_[i];
      Json lp = req_.params.logprobs ? Json{{"content", c.logprobs}} : Json(nullptr);
      choices.push_back(Json{{"index", i},
                             {"message", {{"role", "assistant"}, {"content", c.text}}},
                             {"logprobs", lp},
                             {"finish_reason", Reason(c.finish)}});
    }
    body["choices"] = choices;
    body["usage"] = Usage();
    return body.dump(-1, ' ', false, Json::error_handler_t::replace);
  }

  int status() const override { return failed_ ? 500 : 200; }

 private:
  struct Choice {
    std::string text, finish, error;
    Json logprobs = Json::array();
    bool role_sent = false;
  };
  static Json Reason(const std::string& r) { return r == "cancelled" ? Json("stop") : Json(r); }
  Json Entry(const TokenInfo& t) const {
    const text::Tokenizer& tok = model_.model->tokenizer();
    std::string s = TokenText(tok, t.id);
    Json top = Json::array();
    for (const auto& [id, lp] : t.top) {
      std::string ts = TokenText(tok, id);
      top.push_back(Json{{"token", ts}, {"logprob", lp}, {"bytes", Bytes(ts)}});
    }
    return Json{{"token", s}, {"logprob", t.logprob}, {"bytes", Bytes(s)}, {"top_logprobs", top}};
  }
  Json Base(const char* object) const {
    return Json{{"id", id_}, {"object", object}, {"created", created_}, {"model", model_.name}};
  }
  std::string Chunk(Json choice) const {
    Json chunk = Base("chat.completion.chunk");
    chunk["choices"] = Json::array({std::move(choice)});
    if (req_.include_usage) chunk["usage"] = nullptr;
    return "data: " + chunk.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
  }
  Json Usage() const {
    return Json{{"prompt_tokens", prompt_tokens_},
                {"completion_tokens", completion_tokens_},
                {"total_tokens", prompt_tokens_ + completion_tokens_}};
  }

  const ServedModel& model_;
  std::vector<Choice> choices_;
  const int64_t prompt_tokens_;
  const OpenAiRequest req_;
  const std::string id_ = "chatcmpl-" + RandomId();
  const int64_t created_ = UnixNow();
  int64_t completion_tokens_ = 0;
  bool failed_ = false;
};

// ---- Completions formatter ----

// Legacy logprobs: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}.
struct LegacyLogprobs {
  Json tokens = Json::array(), token_logprobs = Json::array(), top_logprobs = Json::array(),
       text_offset = Json::array();
  size_t offset = 0;
  void Add(const text::Tokenizer& tok, int32_t id, Json logprob, Json top) {
    std::string s = TokenText(tok, id);
    tokens.push_back(s);
    token_logprobs.push_back(std::move(logprob));
    top_logprobs.push_back(std::move(top));
    text_offset.push_back(offset);
    offset += s.size();
  }
  void Add(const text::Tokenizer& tok, const TokenInfo& t) {
    Json top = Json::object();
    for (const auto& [id, lp] : t.top) top[TokenText(tok, id)] = lp;
    Add(tok, t.id, t.logprob, std::move(top));
  }
  Json ToJson() const {
    return Json{{"tokens", tokens},
                {"token_logprobs", token_logprobs},
                {"top_logprobs", top_logprobs},
                {"text_offset", text_offset}};
  }
  void Append(const LegacyLogprobs& o) {
    for (size_t i = 0; i < o.tokens.size(); ++i) {
      tokens.push_back(o.tokens[i]);
      token_logprobs.push_back(o.token_logprobs[i]);
      top_logprobs.push_back(o.top_logprobs[i]);
      text_offset.push_back(offset + o.text_offset[i].get<size_t>());
    }
    offset += o.offset;
  }
};

class CompletionFormatter final : public ReplyFormatter {
 public:
  CompletionFormatter(const ServedModel& m, std::vector<std::string> prompt_texts,
                      std::vector<std::vector<int32_t>> prompts, const OpenAiRequest& r)
      : model_(m),
        prompt_texts_(std::move(prompt_texts)),
        prompts_(std::move(prompts)),
        req_(r),
        choices_(prompts_.size() * static_cast<size_t>(r.params.n)) {
    for (const auto& p : prompts_) prompt_tokens_ += static_cast<int64_t>(p.size());
    // Echo with logprobs: the first prompt token has no logprob (nothing precedes it).
    if (req_.params.prompt_logprobs)
      for (size_t p = 0; p < prompts_.size(); ++p)
        prompt_lp_.emplace_back().Add(Tok(), prompts_[p][0], nullptr, nullptr);
  }

  void OnEvent(const GenEvent& ev, std::string* out) override {
    const size_t ci = static_cast<size_t>(ev.choice);
    const size_t prompt = ci / static_cast<size_t>(req_.params.n);
    Choice& c = choices_.at(ci);
    std::string text;
    LegacyLogprobs lp;
    if (!c.started) {
      c.started = true;
      if (req_.echo) text = prompt_texts_[prompt];
      if (req_.params.prompt_logprobs && ci % static_cast<size_t>(req_.params.n) == 0 && out)
        lp.Append(prompt_lp_[prompt]);
    }
    if (ev.kind == GenEvent::Kind::kPromptLogprobs) {
      LegacyLogprobs& plp = prompt_lp_.at(prompt);
      for (const TokenInfo& t : ev.prompt) {
        plp.Add(Tok(), t);
        if (out) lp.Add(Tok(), t);
      }
    } else if (ev.kind == GenEvent::Kind::kText) {
      text += ev.text;
      c.text += ev.text;
      if (req_.params.logprobs && ev.token) {
        c.logprobs.Add(Tok(), *ev.token);
        if (out) lp.Add(Tok(), *ev.token);
      }
    } else {
      c.finish = ev.finish_reason == "cancelled" ? "stop" : ev.finish_reason;
      c.error = ev.error;
      completion_tokens_ += ev.completion_tokens;
      if (!ev.error.empty()) failed_ = true;
    }
    if (!out) return;
    if (ev.kind == GenEvent::Kind::kFinish && !ev.error.empty()) {
      *out += "data: " +
              Json{{"error",
                    {{"message", ev.error}, {"type", "server_error"}, {"code", "internal_error"}}}}
                  .dump() +
              "\n\n";
      return;
    }
    const bool fin = ev.kind == GenEvent::Kind::kFinish;
    if (text.empty() && lp.tokens.empty() && !fin) return;
    Json choice{{"index", ci},
                {"text", text},
                {"logprobs", req_.params.logprobs ? lp.ToJson() : Json(nullptr)},
                {"finish_reason", fin ? Json(c.finish) : Json(nullptr)}};
    Json chunk = Base();
    chunk["choices"] = Json::array({choice});
    if (req_.include_usage) chunk["usage"] = nullptr;
    *out += "data: " + chunk.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
  }

  std::string Finish(bool streaming) override {
    if (streaming) {
      std::string out;
      if (req_.include_usage) {
        Json chunk = Base();
        chunk["choices"] = Json::array();
        chunk["usage"] = Usage();
        out += "data: " + chunk.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
      }
      return out + "data: [DONE]\n\n";
    }
    if (failed_)
      for (const Choice& c : choices_)
        if (!c.error.empty())
          return Json{
              {"error",
               {{"message", c.error}, {"type", "server_error"}, {"code", "internal_error"}}}}
              .dump();
    Json body = Base();
    Json choices = Json::array();
    for (size_t i = 0; i < choices_.size(); ++i) {
      const Choice& c = choices_[i];
      const size_t prompt = i / static_cast<size_t>(req_.params.n);
      Json lp = nullptr;
      if (req_.params.logprobs) {
        LegacyLogprobs all;
        if (req_.params.prompt_logprobs) all.Append(prompt_lp_[prompt]);
        all.Append(c.logprobs);
        lp = all.ToJson();
      }
      choices.push_back(Json{{"index", i},
                             {"text", (req_.echo ? prompt_texts_[prompt] : std::string()) + c.text},
                             {"logprobs", lp},
                             {"finish_reason", c.finish}});
    }
    body["choices"] = choices;
    body["usage"] = Usage();
    return body.dump(-1, ' ', false, Json::error_handler_t::replace);
  }

  int status() const override { return failed_ ? 500 : 200; }

 private:
  struct Choice {
    std::string text, finish, error;
    LegacyLogprobs logprobs;
    bool started = false;
  };
  const text::Tokenizer& Tok() const { return model_.model->tokenizer(); }
  Json Base() const {
    return Json{
        {"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", model_.name}};
  }
  Json Usage() const {
    return Json{{"prompt_tokens", prompt_tokens_},
                {"completion_tokens", completion_tokens_},
                {"total_tokens", prompt_tokens_ + completion_tokens_}};
  }

  const ServedModel& model_;
  std::vector<std::string> prompt_texts_;
  std::vector<std::vector<int32_t>> prompts_;
  const OpenAiRequest req_;
  std::vector<Choice> choices_;
  std::vector<LegacyLogprobs> prompt_lp_;  // per prompt, when echo + logprobs
  const std::string id_ = "cmpl-" + RandomId();
  const int64_t created_ = UnixNow();
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0;
  bool failed_ = false;
};

// "prompt": a string, an array of token ids, or an array of either. Returns the token ids and the
// text of each prompt.
Status ReadPrompts(const Json& body, const text::TextModel& m,
                   std::vector<std::vector<int32_t>>* prompts, std::vector<std::string>* texts) {
  constexpr size_t kMaxPrompts = 64;
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return InvalidArgument("'prompt' is required");
  auto one = [&](const Json& v) -> Status {
    if (v.is_string()) {
      TSR_ASSIGN_OR_RETURN(auto ids, m.tokenizer().Encode(v.get<std::string>(), true));
      if (ids.empty()) return InvalidArgument("the prompt is empty");
      prompts->push_back(std::move(ids));
      texts->push_back(v.get<std::string>());
      return OkStatus();
    }
    TSR_ASSIGN_OR_RETURN(auto ids, ReadTokenIds(v, "prompt", m.vocab_size()));
    if (ids.empty()) return InvalidArgument("the prompt is empty");
    TSR_ASSIGN_OR_RETURN(std::string text, m.tokenizer().Decode(ids, false));
    prompts->push_back(std::move(ids));
    texts->push_back(std::move(text));
    return OkStatus();
  };
  if (it->is_string()) return one(*it);
  if (!it->is_array() || it->empty())
    return InvalidArgument(
        "'prompt' must be a string, an array of token ids, or an array of those");
  if ((*it)[0].is_number()) return one(*it);
  if (it->size() > kMaxPrompts) return InvalidArgument("at most 64 prompts per request");
  for (const auto& p : *it) {
    if (!p.is_string() && !p.is_array())
      return InvalidArgument(
          "'prompt' must be a string, an array of token ids, or an array of those");
    TSR_RETURN_IF_ERROR(one(p));
  }
  return OkStatus();
}

}  // namespace

HttpReply HandleModelsList(const Api::Context& ctx) {
  Json data = Json::array();
  for (const auto& m : ctx.models.Loaded()) data.push_back(ModelCard(*m));
  for (const CachedModel& c : CachedModels(ctx))  // pulled, loaded on first request
    data.push_back(Json{{"id", c.name},
                        {"object", "model"},
                        {"created", c.modified_unix},
                        {"owned_by", "tessera"},
                        {"root", c.dir}});
  return JsonReply(Json{{"object", "list"}, {"data", data}});
}

HttpReply HandleModelGet(ModelRegistry& models, const std::string& id) {
  for (const auto& m : models.Loaded())
    if (m->name == id) return JsonReply(ModelCard(*m));
  return OpenAiError(404, "model '" + id + "' is not served", "not_found_error", "model_not_found");
}

HttpReply HandleChatCompletions(const HttpRequest& req, ModelRegistry& models, Metrics& metrics) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return OpenAiError(body.status());
  auto m = FindTextModel(models, *body, "model");
  if (!m.ok()) return OpenAiError(m.status());
  OpenAiRequest r;
  if (Status st = ReadOpenAiRequest(*body, **m, /*chat=*/true, &r); !st.ok())
    return OpenAiError(st);
  auto messages = body->find("messages");
  if (messages == body->end()) return OpenAiError(InvalidArgument("'messages' is required"));
  auto tools = body->find("tools");
  auto prompt =
      ChatPromptTokens(*(*m)->model, *messages, tools == body->end() ? Json(nullptr) : *tools);
  if (!prompt.ok()) return OpenAiError(prompt.status());
  const int64_t prompt_tokens = static_cast<int64_t>(prompt->size());
  auto fmt = std::make_unique<ChatFormatter>(**m, r.params.n, prompt_tokens, r);
  return StartGeneration(*m, metrics, {std::move(prompt).value()}, r.params, std::move(fmt),
                         r.stream, "text/event-stream", true);
}

HttpReply HandleCompletions(const HttpRequest& req, ModelRegistry& models, Metrics& metrics) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return OpenAiError(body.status());
  auto m = FindTextModel(models, *body, "model");
  if (!m.ok()) return OpenAiError(m.status());
  OpenAiRequest r;
  if (Status st = ReadOpenAiRequest(*body, **m, /*chat=*/false, &r); !st.ok())
    return OpenAiError(st);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> texts;
  if (Status st = ReadPrompts(*body, *(*m)->model, &prompts, &texts); !st.ok())
    return OpenAiError(st);
  if (prompts.size() * static_cast<size_t>(r.params.n) > 64)
    return OpenAiError(InvalidArgument("prompts x n is larger than 64"));
  auto fmt = std::make_unique<CompletionFormatter>(**m, texts, prompts, r);
  return StartGeneration(*m, metrics, prompts, r.params, std::move(fmt), r.stream,
                         "text/event-stream", true);
}

HttpReply HandleTokenize(const HttpRequest& req, ModelRegistry& models) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return OpenAiError(body.status());
  auto m = FindTextModel(models, *body, "model");
  if (!m.ok()) return OpenAiError(m.status());
  const text::TextModel& model = *(*m)->model;
  StatusOr<std::vector<int32_t>> ids =
      InvalidArgument("'prompt' (a string) or 'messages' is required");
  if (auto messages = body->find("messages"); messages != body->end()) {
    ids = ChatPromptTokens(model, *messages, nullptr);
  } else if (auto prompt = body->find("prompt"); prompt != body->end()) {
    if (!prompt->is_string()) return OpenAiError(InvalidArgument("'prompt' must be a string"));
    bool add_special = true;
    if (Status st = ReadBool(*body, "add_special_tokens", &add_special); !st.ok())
      return OpenAiError(st);
    ids = model.tokenizer().Encode(prompt->get<std::string>(), add_special);
  }
  if (!ids.ok()) return OpenAiError(ids.status());
  Json strs = Json::array();
  bool with_strs = false;
  if (Status st = ReadBool(*body, "return_token_strs", &with_strs); !st.ok())
    return OpenAiError(st);
  if (with_strs)
    for (int32_t id : *ids) strs.push_back(model.tokenizer().IdToToken(id).value_or(""));
  return JsonReply(Json{{"count", ids->size()},
                        {"max_model_len", (*m)->scheduler->max_context()},
                        {"tokens", *ids},
                        {"token_strs", with_strs ? strs : Json(nullptr)}});
}

HttpReply HandleDetokenize(const HttpRequest& req, ModelRegistry& models) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return OpenAiError(body.status());
  auto m = FindTextModel(models, *body, "model");
  if (!m.ok()) return OpenAiError(m.status());
  auto tokens = body->find("tokens");
  if (tokens == body->end()) return OpenAiError(InvalidArgument("'tokens' is required"));
  auto ids = ReadTokenIds(*tokens, "tokens", (*m)->model->vocab_size());
  if (!ids.ok()) return OpenAiError(ids.status());
  auto text = (*m)->model->tokenizer().Decode(*ids, false);
  if (!text.ok()) return OpenAiError(text.status());
  return JsonReply(Json{{"prompt", *text}});
}

}  // namespace tessera::server
