// `engine embed MODEL TEXT...` and `engine rerank MODEL --query Q DOC...`: JSON on stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "commands.h"
#include "tessera/embedding/embedding.h"
#include "tessera/rerank/rerank.h"

namespace tessera::cli {
namespace {

struct EmbedFlags {
  std::string model;
  std::vector<std::string> texts;
  bool normalize = false, no_normalize = false, truncate = false;
  int64_t dimensions = 0;
  int64_t max_batch_tokens = 8192;
};

struct RerankFlags {
  std::string model, query, instruction;
  std::vector<std::string> documents;
  bool truncate = false;
  size_t top_n = 0;
  int64_t max_batch_tokens = 8192;
};

// Settings, plugins, devices and the model, kept alive together.
struct Loaded {
  std::unique_ptr<PluginRegistry> registry;
  OpenedDevices devices;
  std::unique_ptr<embedding::EncoderModel> model;
};

StatusOr<Loaded> LoadModel(GlobalFlags* g, const std::string& name) {
  TSR_ASSIGN_OR_RETURN(Settings settings, ResolveSettings(*g));
  // A folder, an alias or ORG/NAME[@REV] (pulled first when missing): docs/models.md.
  TSR_ASSIGN_OR_RETURN(std::string dir, ResolveModelDir(name, /*pull_if_missing=*/true));
  Loaded l;
  l.registry = LoadPlugins(settings, *g);
  TSR_ASSIGN_OR_RETURN(l.devices, OpenDevices(*l.registry, settings.GetString("backend")));
  TSR_ASSIGN_OR_RETURN(l.model, embedding::EncoderModel::Load(dir, l.devices.ordered));
  return l;
}

struct BenchEmbedFlags {
  std::string model;
  std::vector<int> batches = {1, 32, 256};
  int seq_len = 128;
  int reps = 5;
  int64_t max_batch_tokens = 8192;
  bool json = false;
};

// Embeddings/s and tokens/s at several batch sizes: inputs of seq_len tokens (random ids, the
// tokenizer's special tokens included), one untimed warm-up call per batch size, then the median
// of `reps` timed calls of Embed() (tokenization of ids, packing, forward, pooling).
int RunBenchEmbed(GlobalFlags* g, const BenchEmbedFlags& f) {
  if (f.seq_len < 3 || f.reps < 1)
    return Fail(InvalidArgument("--seq-len must be ≥ 3 and --reps ≥ 1"));
  auto l = LoadModel(g, f.model);
  if (!l.ok()) return Fail(l.status());
  embedding::EncoderModel& model = *l->model;
  const int64_t vocab = model.tokenizer().vocab_size();
  const int64_t specials = model.tokenizer().NumSpecialTokensToAdd(false);
  const int content = static_cast<int>(std::max<int64_t>(1, f.seq_len - specials));
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> id(std::min<int64_t>(1000, vocab / 2),
                                            static_cast<int32_t>(vocab - 1));
  embedding::EmbedOptions opt;
  opt.truncate = true;
  opt.max_batch_tokens = f.max_batch_tokens;
  if (!f.json)
    std::printf("%-8s %8s %12s %12s %10s\n", "batch", "tokens", "embed/s", "tokens/s", "ms/call");
  for (int batch : f.batches) {
    if (batch < 1) return Fail(InvalidArgument("batch sizes must be ≥ 1"));
    std::vector<embedding::EmbedInput> inputs;
    for (int i = 0; i < batch; ++i) {
      std::vector<int32_t> ids(static_cast<size_t>(content));
      for (auto& x : ids) x = id(rng);
      inputs.push_back(embedding::EmbedInput::Ids(std::move(ids)));
    }
    std::vector<double> secs;
    int64_t tokens = 0;
    for (int r = 0; r <= f.reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      auto out = embedding::Embed(model, inputs, opt);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!out.ok()) return Fail(out.status());
      tokens = out->total_tokens;
      if (r > 0) secs.push_back(s);  // the first call builds the graphs
    }
    std::sort(secs.begin(), secs.end());
    const double med = secs[secs.size() / 2];
    if (f.json) {
      nlohmann::ordered_json j{{"test", "embed_b" + std::to_string(batch)},
                               {"model", f.model},
                               {"batch", batch},
                               {"seq_len", tokens / batch},
                               {"embeddings_per_s", batch / med},
                               {"tokens_per_s", static_cast<double>(tokens) / med},
                               {"seconds_median", med},
                               {"reps", f.reps}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%-8d %8lld %12.1f %12.0f %10.2f\n", batch, static_cast<long long>(tokens),
                  batch / med, static_cast<double>(tokens) / med, med * 1e3);
    }
    std::fflush(stdout);
  }
  return 0;
}

int RunEmbed(GlobalFlags* g, const EmbedFlags& f) {
  if (f.normalize && f.no_normalize)
    return Fail(InvalidArgument("--normalize and --no-normalize exclude each other"));
  auto l = LoadModel(g, f.model);
  if (!l.ok()) return Fail(l.status());
  std::vector<embedding::EmbedInput> inputs;
  for (const auto& t : f.texts) inputs.push_back(embedding::EmbedInput::Text(t));
  embedding::EmbedOptions opt;
  if (f.normalize) opt.normalize = true;
  if (f.no_normalize) opt.normalize = false;
  opt.dimensions = f.dimensions;
  opt.truncate = f.truncate;
  opt.max_batch_tokens = f.max_batch_tokens;
  auto r = embedding::Embed(*l->model, inputs, opt);
  if (!r.ok()) return Fail(r.status());
  nlohmann::ordered_json out;
  out["model"] = f.model;
  out["embeddings"] = r->embeddings;
  out["token_counts"] = r->token_counts;
  out["total_tokens"] = r->total_tokens;
  out["dimensions"] = r->embeddings.empty() ? 0 : r->embeddings[0].size();
  std::cout << out.dump() << "\n";
  return 0;
}

int RunRerank(GlobalFlags* g, const RerankFlags& f) {
  auto l = LoadModel(g, f.model);
  if (!l.ok()) return Fail(l.status());
  rerank::RerankOptions opt;
  opt.truncate = f.truncate;
  opt.instruction = f.instruction;
  opt.max_batch_tokens = f.max_batch_tokens;
  auto r = rerank::Rerank(*l->model, f.query, f.documents, opt);
  if (!r.ok()) return Fail(r.status());
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const auto& d : rerank::RankByScore(r->scores, f.top_n)) {
    nlohmann::ordered_json item;
    item["index"] = d.index;
    item["relevance_score"] = d.relevance_score;
    item["document"] = f.documents[d.index];
    results.push_back(std::move(item));
  }
  nlohmann::ordered_json out;
  out["model"] = f.model;
  out["results"] = std::move(results);
  out["total_tokens"] = r->total_tokens;
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace

Handler AddEmbedCommands(CLI::App& app, GlobalFlags* g) {
  auto ef = std::make_shared<EmbedFlags>();
  auto* embed = app.add_subcommand("embed", "Embed texts with an embedding model (JSON out)");
  embed->add_option("model", ef->model, "Model folder (Hugging Face / sentence-transformers)")
      ->required();
  embed->add_option("texts", ef->texts, "Texts to embed")->required();
  embed->add_flag("--normalize", ef->normalize, "L2-normalize (overrides the model's setting)");
  embed->add_flag("--no-normalize", ef->no_normalize, "Do not L2-normalize");
  embed->add_option("--dimensions", ef->dimensions, "Keep the first N dimensions (Matryoshka)");
  embed->add_flag("--truncate", ef->truncate,
                  "Cut inputs longer than the model's max_seq_length instead of failing");
  embed->add_option("--max-batch-tokens", ef->max_batch_tokens, "Token budget of one pass");

  auto rf = std::make_shared<RerankFlags>();
  auto* rr = app.add_subcommand("rerank", "Score documents against a query (JSON out, best first)");
  rr->add_option("model", rf->model, "Reranker folder (cross-encoder or Qwen3-Reranker style)")
      ->required();
  rr->add_option("--query,-q", rf->query, "The query")->required();
  rr->add_option("documents", rf->documents, "Documents to score")->required();
  rr->add_option("--top-n", rf->top_n, "Return only the N best (0 = all)");
  rr->add_option("--instruction", rf->instruction, "Task instruction (yes/no rerankers)");
  rr->add_flag("--truncate", rf->truncate, "Cut pairs longer than the model's limit");
  rr->add_option("--max-batch-tokens", rf->max_batch_tokens, "Token budget of one pass");

  auto bf = std::make_shared<BenchEmbedFlags>();
  auto* be = app.add_subcommand("bench-embed", "Embedding throughput at several batch sizes");
  be->add_option("model", bf->model, "Embedding model")->required();
  be->add_option("--batch", bf->batches, "Batch sizes (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  be->add_option("--seq-len", bf->seq_len, "Tokens per input, special tokens included")
      ->capture_default_str();
  be->add_option("-r,--reps", bf->reps, "Timed calls per batch size (median)")
      ->capture_default_str();
  be->add_option("--max-batch-tokens", bf->max_batch_tokens, "Token budget of one pass")
      ->capture_default_str();
  be->add_flag("--json", bf->json, "One JSON object per batch size");

  return [g, embed, rr, be, ef, rf, bf]() -> int {
    if (embed->parsed()) return RunEmbed(g, *ef);
    if (rr->parsed()) return RunRerank(g, *rf);
    if (be->parsed()) return RunBenchEmbed(g, *bf);
    return -1;
  };
}

}  // namespace tessera::cli
