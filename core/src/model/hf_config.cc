// config.json / generation_config.json parsing. The rules for RoPE follow transformers'
// RotaryEmbeddingConfigMixin (convert_rope_params_to_dict / standardize_rope_params).
#include "tessera/core/model/hf_config.h"

#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

namespace tessera {
namespace {

using nlohmann::json;

constexpr double kDefaultRopeTheta = 10000.0;
// Far larger than any config; bounds what we read from an untrusted path.
constexpr uintmax_t kMaxConfigBytes = 16u << 20;

std::string Short(const json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 80) + "..." : s;
}

// Typed access to one JSON object with errors that name the file and the dotted key path.
// A key whose value is null counts as absent (HF configs write null for "unset").
class Reader {
 public:
  Reader(const json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  const json* Get(const char* key) const {
    if (!obj_.is_object()) return nullptr;
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  bool Has(const char* key) const { return Get(key) != nullptr; }

  Status Missing(const char* key) const {
    return InvalidArgument(where_ + ": missing required key '" + key + "'");
  }
  Status Mistyped(const char* key, const char* want, const json& v) const {
    return InvalidArgument(where_ + ": key '" + key + "' must be " + want + ", got " + Short(v));
  }

  Status Int(const char* key, std::optional<int64_t>* out) const {
    const json* v = Get(key);
    if (v == nullptr) return OkStatus();
    TSR_ASSIGN_OR_RETURN(int64_t i, AsInt(key, *v));
    *out = i;
    return OkStatus();
  }
  Status RequiredPositiveInt(const char* key, int64_t* out) const {
    std::optional<int64_t> v;
    TSR_RETURN_IF_ERROR(Int(key, &v));
    if (!v) return Missing(key);
    if (*v <= 0) return Mistyped(key, "a positive integer", *Get(key));
    *out = *v;
    return OkStatus();
  }
  Status Double(const char* key, std::optional<double>* out) const {
    const json* v = Get(key);
    if (v == nullptr) return OkStatus();
    if (!v->is_number()) return Mistyped(key, "a number", *v);
    *out = v->get<double>();
    return OkStatus();
  }
  Status Bool(const char* key, std::optional<bool>* out) const {
    const json* v = Get(key);
    if (v == nullptr) return OkStatus();
    if (!v->is_boolean()) return Mistyped(key, "true or false", *v);
    *out = v->get<bool>();
    return OkStatus();
  }
  Status String(const char* key, std::string* out) const {
    const json* v = Get(key);
    if (v == nullptr) return OkStatus();
    if (!v->is_string()) return Mistyped(key, "a string", *v);
    *out = v->get<std::string>();
    return OkStatus();
  }
  // An integer or a list of integers (token ids).
  Status IntOrList(const char* key, std::vector<int64_t>* out) const {
    const json* v = Get(key);
    if (v == nullptr) return OkStatus();
    if (!v->is_array()) {
      TSR_ASSIGN_OR_RETURN(int64_t i, AsInt(key, *v));
      out->assign(1, i);
      return OkStatus();
    }
    out->clear();
    for (const json& e : *v) {
      TSR_ASSIGN_OR_RETURN(int64_t i, AsInt(key, e));
      out->push_back(i);
    }
    return OkStatus();
  }
  Status IntList(const char* key, std::vector<int64_t>* out) const {
    const json* v = Get(key);
    if (v == nullptr) return OkStatus();
    if (!v->is_array()) return Mistyped(key, "a list of integers", *v);
    return IntOrList(key, out);
  }
  Status DoubleList(const char* key, std::vector<double>* out) const {
    const json* v = Get(key);
    if (v == nullptr) return OkStatus();
    if (!v->is_array()) return Mistyped(key, "a list of numbers", *v);
    out->clear();
    for (const json& e : *v) {
      if (!e.is_number()) return Mistyped(key, "a list of numbers", *v);
      out->push_back(e.get<double>());
    }
    return OkStatus();
  }
  Status StringList(const char* key, std::vector<std::string>* out) const {
    const json* v = Get(key);
    if (v == nullptr) return OkStatus();
    if (!v->is_array()) return Mistyped(key, "a list of strings", *v);
    out->clear();
    for (const json& e : *v) {
      if (!e.is_string()) return Mistyped(key, "a list of strings", *v);
      out->push_back(e.get<std::string>());
    }
    return OkStatus();
  }

  const std::string& where() const { return where_; }

 private:
  // Integers, or floats with an integral value (some exporters write 4096.0).
  StatusOr<int64_t> AsInt(const char* key, const json& v) const {
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() &&
          v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Mistyped(key, "an integer that fits in 64 bits", v);
      }
      return v.get<int64_t>();
    }
    if (v.is_number_float()) {
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) {
        return static_cast<int64_t>(d);
      }
    }
    return Mistyped(key, "an integer", v);
  }

  const json& obj_;
  std::string where_;
};

std::string NormaliseRopeType(std::string type) {
  if (type == "su") return "longrope";    // Phi-3's pre-release name
  if (type == "mrope") return "default";  // Qwen2-VL: sections ride on a default RoPE
  return type;
}

bool UsesOriginalMaxPositions(const std::string& type) {
  return type == "llama3" || type == "yarn" || type == "longrope";
}

// Reads one RoPE dict into `r` (whose theta / partial factor already hold the config-level
// defaults).
Status ReadRopeDict(const Reader& d, RopeConfig* r) {
  std::string type;
  TSR_RETURN_IF_ERROR(d.String("rope_type", &type));
  if (type.empty()) TSR_RETURN_IF_ERROR(d.String("type", &type));
  r->type = NormaliseRopeType(type.empty() ? "default" : type);

  std::optional<double> theta, partial;
  TSR_RETURN_IF_ERROR(d.Double("rope_theta", &theta));
  TSR_RETURN_IF_ERROR(d.Double("partial_rotary_factor", &partial));
  if (theta) r->theta = *theta;
  if (partial) r->partial_rotary_factor = *partial;
  TSR_RETURN_IF_ERROR(d.Double("factor", &r->factor));
  TSR_RETURN_IF_ERROR(d.Double("attention_factor", &r->attention_factor));
  TSR_RETURN_IF_ERROR(d.Double("low_freq_factor", &r->low_freq_factor));
  TSR_RETURN_IF_ERROR(d.Double("high_freq_factor", &r->high_freq_factor));
  TSR_RETURN_IF_ERROR(
      d.Int("original_max_position_embeddings", &r->original_max_position_embeddings));
  TSR_RETURN_IF_ERROR(d.Double("beta_fast", &r->beta_fast));
  TSR_RETURN_IF_ERROR(d.Double("beta_slow", &r->beta_slow));
  TSR_RETURN_IF_ERROR(d.Double("mscale", &r->mscale));
  TSR_RETURN_IF_ERROR(d.Double("mscale_all_dim", &r->mscale_all_dim));
  std::optional<bool> truncate, interleaved;
  TSR_RETURN_IF_ERROR(d.Bool("truncate", &truncate));
  TSR_RETURN_IF_ERROR(d.Bool("mrope_interleaved", &interleaved));
  r->truncate = truncate.value_or(true);
  r->mrope_interleaved = interleaved.value_or(false);
  TSR_RETURN_IF_ERROR(d.DoubleList("short_factor", &r->short_factor));
  TSR_RETURN_IF_ERROR(d.DoubleList("long_factor", &r->long_factor));
  TSR_RETURN_IF_ERROR(d.IntList("mrope_section", &r->mrope_section));
  return OkStatus();
}

// The keys transformers' validators require for each type (beyond rope_type itself).
Status CheckRopeRequiredKeys(const RopeConfig& r, const std::string& where) {
  auto missing = [&](const char* key) {
    return InvalidArgument(where + ": missing key '" + key + "' required by rope_type '" + r.type +
                           "'");
  };
  const bool needs_factor = r.type == "linear" || r.type == "dynamic" || r.type == "llama3";
  if (needs_factor && !r.factor) return missing("factor");
  if (r.type == "llama3" && !r.low_freq_factor) return missing("low_freq_factor");
  if (r.type == "llama3" && !r.high_freq_factor) return missing("high_freq_factor");
  if (r.type == "longrope" && r.short_factor.empty()) return missing("short_factor");
  if (r.type == "longrope" && r.long_factor.empty()) return missing("long_factor");
  if (!(r.theta > 0.0) || !std::isfinite(r.theta)) {
    return InvalidArgument(where + ": rope_theta must be a positive number");
  }
  return OkStatus();
}

// rope_parameters keyed by layer type ({"full_attention": {...}, "sliding_attention": {...}}).
// `rope` becomes the full-attention entry (or the first one when there is none).
template <typename Finish>
Status ParsePerLayerRope(const json& dict, const RopeConfig& base, const std::string& where,
                         const Finish& finish, ModelConfig* m) {
  for (const auto& [layer_type, sub] : dict.items()) {
    RopeConfig r = base;
    const std::string sub_where = where + "." + layer_type;
    TSR_RETURN_IF_ERROR(ReadRopeDict(Reader(sub, sub_where), &r));
    TSR_RETURN_IF_ERROR(finish(&r, sub_where, /*config_level_original=*/false));
    m->rope_by_layer_type[layer_type] = std::move(r);
  }
  auto full = m->rope_by_layer_type.find("full_attention");
  m->rope =
      full != m->rope_by_layer_type.end() ? full->second : m->rope_by_layer_type.begin()->second;
  return OkStatus();
}

// Fills m->rope / m->rope_by_layer_type from `fields` (the decoder's config object).
Status ParseRope(const json& fields, const std::string& file, ModelConfig* m) {
  Reader top(fields, file);
  RopeConfig base;
  std::optional<double> theta, partial;
  std::optional<int64_t> top_original;
  TSR_RETURN_IF_ERROR(top.Double("rope_theta", &theta));
  TSR_RETURN_IF_ERROR(top.Double("partial_rotary_factor", &partial));
  TSR_RETURN_IF_ERROR(top.Int("original_max_position_embeddings", &top_original));
  base.theta = theta.value_or(kDefaultRopeTheta);
  base.partial_rotary_factor = partial.value_or(1.0);
  base.max_position_embeddings = m->max_position_embeddings;

  // transformers v5: rope_parameters = rope_scaling or rope_parameters.
  const char* dict_key = "rope_scaling";
  const json* dict = top.Get(dict_key);
  if (dict == nullptr || (dict->is_object() && dict->empty())) {
    dict_key = "rope_parameters";
    dict = top.Get(dict_key);
  }
  if (dict != nullptr && !dict->is_object()) return top.Mistyped(dict_key, "an object", *dict);

  bool per_layer = dict != nullptr && !dict->empty();
  if (per_layer) {
    for (const auto& [k, v] : dict->items()) per_layer = per_layer && v.is_object();
  }
  auto finish = [&](RopeConfig* r, const std::string& where, bool config_level_original) {
    if (UsesOriginalMaxPositions(r->type)) {
      // Phi-3 keeps the pretraining length at the config level, and it wins there.
      if (config_level_original && top_original) {
        r->original_max_position_embeddings = top_original;
      } else if (!r->original_max_position_embeddings) {
        r->original_max_position_embeddings = m->max_position_embeddings;
      }
    }
    return CheckRopeRequiredKeys(*r, where);
  };

  if (per_layer) return ParsePerLayerRope(*dict, base, file + ": " + dict_key, finish, m);

  RopeConfig r = base;
  const std::string where = file + (dict != nullptr ? std::string(": ") + dict_key : "");
  if (dict != nullptr) TSR_RETURN_IF_ERROR(ReadRopeDict(Reader(*dict, where), &r));
  if (partial) r.partial_rotary_factor = *partial;  // config-level value wins (standardize)
  TSR_RETURN_IF_ERROR(finish(&r, where, /*config_level_original=*/true));
  m->rope = r;

  // Gemma 3 (v4 style): sliding layers use their own base frequency and no scaling.
  std::optional<double> local_theta;
  TSR_RETURN_IF_ERROR(top.Double("rope_local_base_freq", &local_theta));
  if (local_theta) {
    RopeConfig sliding = base;
    sliding.theta = *local_theta;
    TSR_RETURN_IF_ERROR(CheckRopeRequiredKeys(sliding, file + ": rope_local_base_freq"));
    m->rope_by_layer_type["full_attention"] = r;
    m->rope_by_layer_type["sliding_attention"] = sliding;
  }
  return OkStatus();
}

Status ParseDecoderFields(const Reader& f, ModelConfig* m) {
  TSR_RETURN_IF_ERROR(f.RequiredPositiveInt("hidden_size", &m->hidden_size));
  TSR_RETURN_IF_ERROR(f.RequiredPositiveInt("intermediate_size", &m->intermediate_size));
  TSR_RETURN_IF_ERROR(f.RequiredPositiveInt("num_hidden_layers", &m->num_hidden_layers));
  TSR_RETURN_IF_ERROR(f.RequiredPositiveInt("num_attention_heads", &m->num_attention_heads));
  TSR_RETURN_IF_ERROR(f.RequiredPositiveInt("vocab_size", &m->vocab_size));
  std::optional<int64_t> kv, head_dim, max_pos, window;
  TSR_RETURN_IF_ERROR(f.Int("num_key_value_heads", &kv));
  TSR_RETURN_IF_ERROR(f.Int("head_dim", &head_dim));
  TSR_RETURN_IF_ERROR(f.Int("max_position_embeddings", &max_pos));
  m->num_key_value_heads = kv.value_or(m->num_attention_heads);
  if (m->num_key_value_heads <= 0 || m->num_attention_heads % m->num_key_value_heads != 0) {
    return InvalidArgument(f.where() + ": num_key_value_heads " +
                           std::to_string(m->num_key_value_heads) + " does not divide " +
                           "num_attention_heads " + std::to_string(m->num_attention_heads));
  }
  if (head_dim && *head_dim > 0) {
    m->head_dim = *head_dim;
  } else if (m->hidden_size % m->num_attention_heads == 0) {
    m->head_dim = m->hidden_size / m->num_attention_heads;
  } else {
    return InvalidArgument(f.where() + ": no 'head_dim' and hidden_size " +
                           std::to_string(m->hidden_size) + " is not a multiple of " +
                           "num_attention_heads " + std::to_string(m->num_attention_heads));
  }
  m->max_position_embeddings = max_pos.value_or(0);

  TSR_RETURN_IF_ERROR(f.Double("rms_norm_eps", &m->rms_norm_eps));
  TSR_RETURN_IF_ERROR(f.Double("layer_norm_eps", &m->layer_norm_eps));
  if (!m->layer_norm_eps) TSR_RETURN_IF_ERROR(f.Double("layer_norm_epsilon", &m->layer_norm_eps));
  TSR_RETURN_IF_ERROR(f.String("hidden_act", &m->hidden_act));
  if (m->hidden_act.empty()) TSR_RETURN_IF_ERROR(f.String("hidden_activation", &m->hidden_act));
  std::optional<bool> tie, bias, use_window;
  TSR_RETURN_IF_ERROR(f.Bool("tie_word_embeddings", &tie));
  TSR_RETURN_IF_ERROR(f.Bool("attention_bias", &bias));
  TSR_RETURN_IF_ERROR(f.Bool("use_sliding_window", &use_window));
  m->tie_word_embeddings = tie.value_or(false);
  m->attention_bias = bias.value_or(false);
  TSR_RETURN_IF_ERROR(f.Int("sliding_window", &window));
  if (use_window.value_or(true)) m->sliding_window = window;
  TSR_RETURN_IF_ERROR(f.StringList("layer_types", &m->layer_types));
  return OkStatus();
}

// Keys that multimodal configs keep at the top level while the decoder sits in text_config.
Status ParseSharedFields(const Reader& f, const Reader& top, ModelConfig* m) {
  for (const Reader* r : {&f, &top}) {
    if (m->dtype.empty()) TSR_RETURN_IF_ERROR(r->String("torch_dtype", &m->dtype));
    if (m->dtype.empty()) TSR_RETURN_IF_ERROR(r->String("dtype", &m->dtype));
    if (m->bos_token_ids.empty())
      TSR_RETURN_IF_ERROR(r->IntOrList("bos_token_id", &m->bos_token_ids));
    if (m->eos_token_ids.empty())
      TSR_RETURN_IF_ERROR(r->IntOrList("eos_token_id", &m->eos_token_ids));
    if (m->pad_token_ids.empty())
      TSR_RETURN_IF_ERROR(r->IntOrList("pad_token_id", &m->pad_token_ids));
    if (m->architectures.empty())
      TSR_RETURN_IF_ERROR(r->StringList("architectures", &m->architectures));
    if (m->model_type.empty()) TSR_RETURN_IF_ERROR(r->String("model_type", &m->model_type));
  }
  return OkStatus();
}

StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return NotFound(path + ": no such file");
  if (std::filesystem::file_size(path, ec) > kMaxConfigBytes) {
    return InvalidArgument(path + ": larger than 16 MB, not a config file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open");
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

StatusOr<json> ParseJson(std::string_view text, const std::string& what) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const std::exception& e) {
    return InvalidArgument(what + ": not valid JSON: " + e.what());
  }
}

std::string ResolveInDir(const std::string& path, const char* file) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return (std::filesystem::path(path) / file).string();
  return path;
}

// `defaults` (an object, possibly empty) fills keys the decoder fields leave absent or null.
StatusOr<ModelConfig> ParseModelConfigNamed(const json& config, const json& defaults,
                                            const std::string& file) {
  if (!config.is_object()) return InvalidArgument(file + ": not a JSON object");
  if (!defaults.is_null() && !defaults.is_object()) {
    return InvalidArgument(file + ": family defaults must be a JSON object");
  }
  ModelConfig m;
  const json* fields = &config;
  auto text = config.find("text_config");
  if (!config.contains("hidden_size") && text != config.end() && text->is_object()) {
    fields = &*text;
    m.from_text_config = true;
  }
  json merged;
  if (defaults.is_object() && !defaults.empty()) {
    merged = defaults;
    for (const auto& [key, value] : fields->items()) {
      if (!value.is_null() || !merged.contains(key)) merged[key] = value;
    }
    fields = &merged;
  }
  const std::string where = m.from_text_config ? file + ": text_config" : file;
  Reader f(*fields, where);
  TSR_RETURN_IF_ERROR(ParseDecoderFields(f, &m));
  TSR_RETURN_IF_ERROR(ParseSharedFields(f, Reader(config, file), &m));
  TSR_RETURN_IF_ERROR(ParseRope(*fields, where, &m));
  m.raw = config;
  return m;
}

StatusOr<GenerationConfig> ParseGenerationConfigNamed(const json& config, const std::string& file) {
  if (!config.is_object()) return InvalidArgument(file + ": not a JSON object");
  Reader r(config, file);
  GenerationConfig g;
  TSR_RETURN_IF_ERROR(r.IntOrList("eos_token_id", &g.eos_token_ids));
  TSR_RETURN_IF_ERROR(r.Int("bos_token_id", &g.bos_token_id));
  TSR_RETURN_IF_ERROR(r.Int("pad_token_id", &g.pad_token_id));
  TSR_RETURN_IF_ERROR(r.Bool("do_sample", &g.do_sample));
  TSR_RETURN_IF_ERROR(r.Double("temperature", &g.temperature));
  TSR_RETURN_IF_ERROR(r.Double("top_p", &g.top_p));
  TSR_RETURN_IF_ERROR(r.Int("top_k", &g.top_k));
  TSR_RETURN_IF_ERROR(r.Double("min_p", &g.min_p));
  TSR_RETURN_IF_ERROR(r.Double("repetition_penalty", &g.repetition_penalty));
  TSR_RETURN_IF_ERROR(r.Int("max_new_tokens", &g.max_new_tokens));
  TSR_RETURN_IF_ERROR(r.Int("max_length", &g.max_length));
  return g;
}

}  // namespace

const RopeConfig& ModelConfig::RopeFor(std::string_view layer_type) const {
  auto it = rope_by_layer_type.find(std::string(layer_type));
  return it != rope_by_layer_type.end() ? it->second : rope;
}

StatusOr<ModelConfig> ParseModelConfig(const json& config) {
  return ParseModelConfigNamed(config, json(), "config.json");
}

StatusOr<ModelConfig> ParseModelConfig(const json& config, const json& family_defaults) {
  return ParseModelConfigNamed(config, family_defaults, "config.json");
}

StatusOr<ModelConfig> ParseModelConfigText(std::string_view text) {
  TSR_ASSIGN_OR_RETURN(json j, ParseJson(text, "config.json"));
  return ParseModelConfigNamed(j, json(), "config.json");
}

StatusOr<ModelConfig> LoadModelConfig(const std::string& path) {
  const std::string file = ResolveInDir(path, "config.json");
  TSR_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(file));
  TSR_ASSIGN_OR_RETURN(json j, ParseJson(text, file));
  return ParseModelConfigNamed(j, json(), file);
}

StatusOr<GenerationConfig> ParseGenerationConfig(const json& config) {
  return ParseGenerationConfigNamed(config, "generation_config.json");
}

StatusOr<GenerationConfig> ParseGenerationConfigText(std::string_view text) {
  TSR_ASSIGN_OR_RETURN(json j, ParseJson(text, "generation_config.json"));
  return ParseGenerationConfigNamed(j, "generation_config.json");
}

StatusOr<GenerationConfig> LoadGenerationConfig(const std::string& path) {
  const std::string file = ResolveInDir(path, "generation_config.json");
  TSR_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(file));
  TSR_ASSIGN_OR_RETURN(json j, ParseJson(text, file));
  return ParseGenerationConfigNamed(j, file);
}

}  // namespace tessera
