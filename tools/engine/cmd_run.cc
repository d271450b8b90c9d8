// `engine run MODEL [PROMPT]`, `engine tokenize MODEL TEXT`, `engine detokenize MODEL '[ids]'`.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "quantize_flag.h"
#include "tessera/text/generate.h"
#include "tessera/text/text_model.h"

namespace tessera::cli {
namespace {

namespace fs = std::filesystem;

struct RunFlags {
  std::string model, prompt;
  bool raw = false;
  int max_tokens = 512;
  std::optional<float> temperature, top_p, min_p, repeat_penalty;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::string quantize;  // --quantize: shorthand for the `quantize` setting
};

StatusOr<std::string> ResolveModel(const std::string& model) {
  if (model.empty()) {
    std::string d = DefaultModelDir();
    if (d.empty()) return NotFound("no model given and the bundled default model is not installed");
    return d;
  }
  // A folder, an alias or ORG/NAME[@REV] (pulled first when missing): docs/models.md.
  return ResolveModelDir(model, /*pull_if_missing=*/true);
}

text::SamplingParams Sampling(const RunFlags& f, const text::TextModel& m) {
  text::SamplingParams p;
  const GenerationConfig& g = m.generation_config();
  bool sample = g.do_sample.value_or(false);
  p.temperature = static_cast<float>(sample ? g.temperature.value_or(1.0) : 0.0);
  if (sample) {
    p.top_p = static_cast<float>(g.top_p.value_or(1.0));
    p.top_k = static_cast<int32_t>(g.top_k.value_or(0));
    p.min_p = static_cast<float>(g.min_p.value_or(0.0));
  }
  p.repetition_penalty = static_cast<float>(g.repetition_penalty.value_or(1.0));
  if (f.temperature) p.temperature = *f.temperature;
  if (f.top_p) p.top_p = *f.top_p;
  if (f.top_k) p.top_k = *f.top_k;
  if (f.min_p) p.min_p = *f.min_p;
  if (f.repeat_penalty) p.repetition_penalty = *f.repeat_penalty;
  p.seed = f.seed;
  return p;
}

// Renders the conversation through the chat template, or falls back to the plain text of the
// last message when the model has none.
StatusOr<std::vector<int32_t>> ChatPrompt(const text::TextModel& m,
                                          const nlohmann::ordered_json& messages) {
  const text::ChatTemplate* t = m.chat_template();
  if (!t) return m.tokenizer().Encode(messages.back()["content"].get<std::string>(), true);
  text::ChatTemplateInputs in;
  in.messages = messages;
  in.add_generation_prompt = true;
  in.bos_token = t->bos_token();
  in.eos_token = t->eos_token();
  TSR_ASSIGN_OR_RETURN(std::string rendered, t->Apply(in));
  // The template already holds the special tokens it wants: encode without adding more.
  return m.tokenizer().Encode(rendered, false);
}

StatusOr<text::GenerateResult> Answer(text::TextModel& m, const RunFlags& f,
                                      std::vector<int32_t> prompt) {
  text::GenerateRequest req;
  req.prompt = std::move(prompt);
  req.sampling = Sampling(f, m);
  req.max_tokens = f.max_tokens;
  req.stop = f.stop;
  auto r = text::Generate(m, req, [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  if (r.ok()) {
    std::fputc('\n', stdout);
    double tps = r->decode_seconds > 0 ? r->tokens.size() / r->decode_seconds : 0;
    spdlog::info(
        "{} prompt tokens in {:.2f}s, {} generated in {:.2f}s ({:.1f} tokens/s), finish: {}",
        req.prompt.size(), r->prefill_seconds, r->tokens.size(), r->decode_seconds, tps,
        r->finish_reason);
  }
  return r;
}

int Chat(text::TextModel& m, const RunFlags& f) {
  nlohmann::ordered_json history = nlohmann::ordered_json::array();
  bool tty = isatty(STDIN_FILENO);
  for (;;) {
    if (tty) std::fprintf(stderr, ">>> ");
    std::string line;
    if (!std::getline(std::cin, line)) break;  // Ctrl-D / end of input
    if (line == "/bye") break;
    if (line.empty()) continue;
    history.push_back({{"role", "user"}, {"content", line}});
    auto prompt = ChatPrompt(m, history);
    if (!prompt.ok()) return Fail(prompt.status());
    auto r = Answer(m, f, std::move(prompt).value());
    if (!r.ok()) {
      std::fprintf(stderr, "error: %s\n", r.status().message().c_str());
      history.erase(history.size() - 1);
      continue;
    }
    history.push_back({{"role", "assistant"}, {"content", r->text}});
  }
  return 0;
}

int RunModel(GlobalFlags* g, const RunFlags& f) {
  auto settings = ResolveSettings(*g);
  if (!settings.ok()) return Fail(settings.status());
  auto dir = ResolveModel(f.model);
  if (!dir.ok()) return Fail(dir.status());
  auto quant = QuantizeSetting(&*settings, f.quantize);
  if (!quant.ok()) return Fail(quant.status());
  auto reg = LoadPlugins(*settings, WithInt8Dot(*g, *quant));
  auto devs = OpenDevices(*reg, settings->GetString("backend"));
  if (!devs.ok()) return Fail(devs.status());
  text::TextModelOptions opt;
  opt.quantize = *quant;
  auto model = text::TextModel::Load(*dir, devs->ordered, opt);
  if (!model.ok()) return Fail(model.status());
  text::TextModel& m = **model;
  if (f.prompt.empty()) return Chat(m, f);
  StatusOr<std::vector<int32_t>> prompt =
      f.raw ? m.tokenizer().Encode(f.prompt, true)
            : ChatPrompt(
                  m, nlohmann::ordered_json::array({{{"role", "user"}, {"content", f.prompt}}}));
  if (!prompt.ok()) return Fail(prompt.status());
  auto r = Answer(m, f, std::move(prompt).value());
  return r.ok() ? 0 : Fail(r.status());
}

StatusOr<std::unique_ptr<text::Tokenizer>> LoadTokenizer(const std::string& model) {
  TSR_ASSIGN_OR_RETURN(std::string dir, ResolveModel(model));
  return text::Tokenizer::FromFile(dir + "/tokenizer.json");
}

}  // namespace

Handler AddRunCommand(CLI::App& app, GlobalFlags* g) {
  auto* cmd = app.add_subcommand("run", "Chat with a model, or answer one prompt");
  auto f = std::make_shared<RunFlags>();
  cmd->add_option("model", f->model,
                  "Model folder, alias or ORG/NAME[@REV] (default: the bundled default model)");
  cmd->add_option("prompt", f->prompt,
                  "Prompt; without one, an interactive chat (/bye or Ctrl-D ends it)");
  cmd->add_flag("--raw", f->raw,
                "Skip the chat template; encode the prompt as transformers does by default");
  cmd->add_option("-n,--max-tokens", f->max_tokens,
                  "Most tokens to generate (-1 = until EOS or context end)")
      ->check(CLI::Range(-1, 1 << 30));
  cmd->add_option("--temperature", f->temperature, "Sampling temperature; 0 = greedy");
  cmd->add_option("--top-p", f->top_p, "Nucleus sampling mass");
  cmd->add_option("--top-k", f->top_k, "Keep the k most likely tokens (0 = off)");
  cmd->add_option("--min-p", f->min_p, "Drop tokens below min-p x the top probability");
  cmd->add_option("--repeat-penalty", f->repeat_penalty, "Repetition penalty (1 = off)");
  cmd->add_option("--seed", f->seed, "Random seed for reproducible sampling");
  cmd->add_option("--stop", f->stop, "Stop string (repeatable)");
  cmd->add_option("--quantize", f->quantize,
                  "Quantize weights at load: none, q8, q4 (setting quantize; cached)");
  return [=]() { return cmd->parsed() ? RunModel(g, *f) : -1; };
}

Handler AddTokenizeCommands(CLI::App& app, GlobalFlags* g) {
  auto* tok = app.add_subcommand("tokenize", "Print the token ids of TEXT as a JSON array");
  auto* detok = app.add_subcommand("detokenize", "Print the text of a JSON array of token ids");
  auto model = std::make_shared<std::string>();
  auto model2 = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto ids = std::make_shared<std::string>();
  auto no_special = std::make_shared<bool>(false);
  auto skip_special = std::make_shared<bool>(false);
  tok->add_option("model", *model, "Model folder")->required();
  tok->add_option("text", *text, "Text to encode")->required();
  tok->add_flag("--no-add-special", *no_special, "Do not add the post-processor's special tokens");
  detok->add_option("model", *model2, "Model folder")->required();
  detok->add_option("ids", *ids, "JSON array of token ids, e.g. '[1, 2, 3]'")->required();
  detok->add_flag("--skip-special", *skip_special, "Leave special tokens out of the text");
  return [=]() -> int {
    if (!tok->parsed() && !detok->parsed()) return -1;
    auto settings = ResolveSettings(*g);
    if (!settings.ok()) return Fail(settings.status());
    auto t = LoadTokenizer(tok->parsed() ? *model : *model2);
    if (!t.ok()) return Fail(t.status());
    if (tok->parsed()) {
      auto out = (*t)->Encode(*text, !*no_special);
      if (!out.ok()) return Fail(out.status());
      std::cout << nlohmann::json(*out).dump() << "\n";
      return 0;
    }
    nlohmann::json j = nlohmann::json::parse(*ids, nullptr, false);
    if (j.is_discarded() || !j.is_array())
      return Fail(InvalidArgument("ids must be a JSON array of integers"));
    std::vector<int32_t> v;
    for (const auto& e : j) {
      if (!e.is_number_integer())
        return Fail(InvalidArgument("ids must be a JSON array of integers"));
      int64_t id = e.get<int64_t>();
      if (id < 0 || id > INT32_MAX)
        return Fail(InvalidArgument("token id " + std::to_string(id) + " is out of range"));
      v.push_back(static_cast<int32_t>(id));
    }
    auto out = (*t)->Decode(v, *skip_special);
    if (!out.ok()) return Fail(out.status());
    std::cout << *out << "\n";
    return 0;
  };
}

}  // namespace tessera::cli
