// DetectModel: the model kind, pooling and limits from config.json and the
// sentence-transformers files (modules.json, <pooling path>/config.json,
// sentence_bert_config.json).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tessera/embedding/encoder_model.h"
#include "tessera/text/decoder.h"

namespace tessera::embedding {
namespace {

namespace fs = std::filesystem;

StatusOr<nlohmann::json> ReadJsonFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open '" + path.string() + "'");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) return InvalidArgument("'" + path.string() + "' is not valid JSON");
  return j;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Pooling from 1_Pooling/config.json: the pooling_mode_* flags of sentence-transformers
// (exactly one supported mode may be set), or the newer single "pooling_mode" string.
StatusOr<Pooling> ParsePooling(const nlohmann::json& j, const std::string& where) {
  if (j.contains("pooling_mode") && j["pooling_mode"].is_string()) {
    const std::string m = j["pooling_mode"];
    if (m == "cls") return Pooling::kCls;
    if (m == "mean") return Pooling::kMean;
    if (m == "max") return Pooling::kMax;
    if (m == "lasttoken") return Pooling::kLastToken;
    return Unimplemented(where + ": pooling_mode '" + m + "' is not supported");
  }
  std::vector<Pooling> modes;
  auto flag = [&](const char* key) { return j.value(key, false); };
  if (flag("pooling_mode_cls_token")) modes.push_back(Pooling::kCls);
  if (flag("pooling_mode_mean_tokens")) modes.push_back(Pooling::kMean);
  if (flag("pooling_mode_max_tokens")) modes.push_back(Pooling::kMax);
  if (flag("pooling_mode_lasttoken")) modes.push_back(Pooling::kLastToken);
  if (flag("pooling_mode_mean_sqrt_len_tokens") || flag("pooling_mode_weightedmean_tokens"))
    return Unimplemented(where + ": mean_sqrt_len and weightedmean pooling are not supported");
  if (modes.size() != 1)
    return Unimplemented(where + ": exactly one of cls/mean/max/lasttoken pooling must be set (" +
                         std::to_string(modes.size()) + " are)");
  return modes[0];
}

// Applies modules.json: Transformer, then Pooling, then optionally Normalize.
Status ApplySentenceTransformers(const fs::path& dir, ModelInfo* info) {
  TSR_ASSIGN_OR_RETURN(nlohmann::json modules, ReadJsonFile(dir / "modules.json"));
  if (!modules.is_array()) return InvalidArgument("modules.json must be an array");
  info->sentence_transformers = true;
  info->normalize = false;
  bool pooled = false;
  for (const auto& m : modules) {
    const std::string type = m.value("type", "");
    const std::string path = m.value("path", "");
    if (EndsWith(type, ".Transformer")) continue;
    if (EndsWith(type, ".Pooling")) {
      TSR_ASSIGN_OR_RETURN(nlohmann::json pj, ReadJsonFile(dir / path / "config.json"));
      TSR_ASSIGN_OR_RETURN(info->pooling, ParsePooling(pj, path + "/config.json"));
      pooled = true;
    } else if (EndsWith(type, ".Normalize")) {
      info->normalize = true;
    } else {
      return Unimplemented("sentence-transformers module '" + type + "' is not supported");
    }
  }
  if (!pooled) return Unimplemented("modules.json has no Pooling module");
  auto sb = ReadJsonFile(dir / "sentence_bert_config.json");
  if (sb.ok() && sb->contains("max_seq_length") && (*sb)["max_seq_length"].is_number_integer())
    info->max_seq_length = (*sb)["max_seq_length"].get<int64_t>();
  return OkStatus();
}

// The longest sequence the position table allows.
int64_t PositionLimit(const ModelConfig& c, Backbone b) {
  const int64_t p = c.max_position_embeddings;
  if (b == Backbone::kRoberta) {
    // RoBERTa positions start at padding_idx + 1.
    const int64_t pad = c.pad_token_ids.empty() ? 1 : c.pad_token_ids[0];
    return p > 0 ? p - pad - 1 : 512;
  }
  if (b == Backbone::kDecoder) return p > 0 ? p : 32768;
  return p > 0 ? p : 512;
}

}  // namespace

const char* ModelKindName(ModelKind kind) {
  switch (kind) {
    case ModelKind::kEmbedding: return "embedding";
    case ModelKind::kCrossEncoder: return "cross-encoder";
    case ModelKind::kYesNoReranker: return "yes/no reranker";
  }
  return "?";
}

const char* PoolingName(Pooling pooling) {
  switch (pooling) {
    case Pooling::kCls: return "cls";
    case Pooling::kMean: return "mean";
    case Pooling::kMax: return "max";
    case Pooling::kLastToken: return "lasttoken";
  }
  return "?";
}

StatusOr<ModelInfo> DetectModel(const std::string& dir_str) {
  const fs::path dir(dir_str);
  TSR_ASSIGN_OR_RETURN(nlohmann::json raw, ReadJsonFile(dir / "config.json"));
  TSR_ASSIGN_OR_RETURN(ModelConfig c, ParseModelConfig(raw));
  ModelInfo info;
  info.architecture = c.architectures.empty() ? c.model_type : c.architectures[0];
  const std::string& mt = c.model_type;
  if (mt == "bert")
    info.backbone = Backbone::kBert;
  else if (mt == "roberta" || mt == "xlm-roberta" || mt == "camembert")
    info.backbone = Backbone::kRoberta;
  else if (EndsWith(info.architecture, "ForCausalLM") || EndsWith(info.architecture, "Model"))
    info.backbone = Backbone::kDecoder;
  else
    return Unimplemented("'" + info.architecture +
                         "' is not a supported embedding or rerank model");
  info.hidden = c.hidden_size;
  const bool has_st = fs::exists(dir / "modules.json");
  fs::path folder = fs::path(dir_str).lexically_normal();
  if (folder.filename().empty()) folder = folder.parent_path();
  std::string name = Lower(folder.filename().string());
  // A Hugging Face cache snapshot (.../models--ORG--NAME/snapshots/<commit>) is named by its repo.
  if (folder.parent_path().filename() == "snapshots")
    name += " " + Lower(folder.parent_path().parent_path().filename().string());
  name += " " + Lower(raw.value("_name_or_path", std::string()));

  if (EndsWith(info.architecture, "ForSequenceClassification")) {
    if (info.backbone == Backbone::kDecoder)
      return Unimplemented("decoder sequence-classification rerankers are not supported");
    info.kind = ModelKind::kCrossEncoder;
    info.num_labels = raw.contains("id2label") && raw["id2label"].is_object()
                          ? static_cast<int32_t>(raw["id2label"].size())
                          : raw.value("num_labels", 2);
  } else if (has_st) {
    info.kind = ModelKind::kEmbedding;
    TSR_RETURN_IF_ERROR(ApplySentenceTransformers(dir, &info));
  } else if (info.backbone == Backbone::kDecoder) {
    if (name.find("rerank") != std::string::npos) {
      info.kind = ModelKind::kYesNoReranker;
    } else if (name.find("embed") != std::string::npos) {
      info.kind = ModelKind::kEmbedding;  // Qwen3-Embedding's convention
      info.pooling = Pooling::kLastToken;
      info.normalize = true;
    } else {
      return FailedPrecondition("'" + dir_str + "' (" + info.architecture +
                                ") is a chat model, not an embedding or rerank model");
    }
  } else {
    // A bare encoder: sentence-transformers' own fallback (mean pooling, no Normalize).
    info.kind = ModelKind::kEmbedding;
    info.pooling = Pooling::kMean;
    info.normalize = false;
  }
  const int64_t limit = PositionLimit(c, info.backbone);
  if (info.max_seq_length <= 0 || info.max_seq_length > limit) info.max_seq_length = limit;
  return info;
}

}  // namespace tessera::embedding
