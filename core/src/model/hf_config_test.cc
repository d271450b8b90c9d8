// Config parsing against config.json files shaped like the Hub's (Llama 3.1, Qwen2.5, Qwen3,
// Gemma 3, Phi-3, Mistral), in both RoPE styles.
#include "tessera/core/model/hf_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace tessera {
namespace {

using nlohmann::json;

ModelConfig MustParse(const std::string& text) {
  auto m = ParseModelConfigText(text);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : ModelConfig{};
}

// meta-llama/Llama-3.1-8B-Instruct
constexpr char kLlama31[] = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 128256})";

TEST(HfConfigTest, Llama31) {
  ModelConfig m = MustParse(kLlama31);
  EXPECT_EQ(m.architectures, std::vector<std::string>{"LlamaForCausalLM"});
  EXPECT_EQ(m.model_type, "llama");
  EXPECT_EQ(m.hidden_size, 4096);
  EXPECT_EQ(m.intermediate_size, 14336);
  EXPECT_EQ(m.num_hidden_layers, 32);
  EXPECT_EQ(m.num_attention_heads, 32);
  EXPECT_EQ(m.num_key_value_heads, 8);
  EXPECT_EQ(m.head_dim, 128);  // derived
  EXPECT_EQ(m.vocab_size, 128256);
  EXPECT_EQ(m.max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(*m.rms_norm_eps, 1e-5);
  EXPECT_FALSE(m.layer_norm_eps.has_value());
  EXPECT_EQ(m.hidden_act, "silu");
  EXPECT_FALSE(m.tie_word_embeddings);
  EXPECT_FALSE(m.attention_bias);
  EXPECT_FALSE(m.sliding_window.has_value());
  EXPECT_EQ(m.dtype, "bfloat16");
  EXPECT_EQ(m.bos_token_ids, std::vector<int64_t>{128000});
  EXPECT_EQ(m.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_TRUE(m.pad_token_ids.empty());
  EXPECT_EQ(m.rope.type, "llama3");
  EXPECT_DOUBLE_EQ(m.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(*m.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(*m.rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(*m.rope.high_freq_factor, 4.0);
  EXPECT_EQ(*m.rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(m.rope.max_position_embeddings, 131072);
  EXPECT_TRUE(m.rope_by_layer_type.empty());
  EXPECT_EQ(m.raw["pretraining_tp"], 1);
}

// The same model as saved by transformers v5: rope_parameters and "dtype".
TEST(HfConfigTest, Llama31V5Style) {
  json j = json::parse(kLlama31);
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j.erase("torch_dtype");
  j["dtype"] = "bfloat16";
  j["rope_parameters"] = {{"factor", 8.0},           {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192},
                          {"rope_theta", 500000.0},  {"rope_type", "llama3"}};
  auto m = ParseModelConfig(j);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->dtype, "bfloat16");
  EXPECT_EQ(m->rope.type, "llama3");
  EXPECT_DOUBLE_EQ(m->rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(*m->rope.factor, 8.0);
  EXPECT_EQ(*m->rope.original_max_position_embeddings, 8192);
}

// Qwen/Qwen2.5-7B-Instruct: sliding_window is set but use_sliding_window is false.
TEST(HfConfigTest, Qwen25) {
  ModelConfig m = MustParse(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
    "intermediate_size": 18944, "max_position_embeddings": 32768, "max_window_layers": 28,
    "model_type": "qwen2", "num_attention_heads": 28, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "sliding_window": 131072, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.1", "use_cache": true, "use_sliding_window": false,
    "vocab_size": 152064})");
  EXPECT_EQ(m.model_type, "qwen2");
  EXPECT_EQ(m.head_dim, 128);
  EXPECT_EQ(m.num_key_value_heads, 4);
  EXPECT_FALSE(m.sliding_window.has_value());
  EXPECT_EQ(m.eos_token_ids, std::vector<int64_t>{151645});
  EXPECT_EQ(m.rope.type, "default");
  EXPECT_DOUBLE_EQ(m.rope.theta, 1e6);
  EXPECT_FALSE(m.rope.original_max_position_embeddings.has_value());
}

// Qwen/Qwen3-8B: explicit head_dim, nulls for rope_scaling and sliding_window, integer theta.
TEST(HfConfigTest, Qwen3) {
  ModelConfig m = MustParse(R"({
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 12288,
    "max_position_embeddings": 40960, "max_window_layers": 36, "model_type": "qwen3",
    "num_attention_heads": 32, "num_hidden_layers": 36, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
    "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})");
  EXPECT_EQ(m.head_dim, 128);
  EXPECT_EQ(m.num_hidden_layers, 36);
  EXPECT_EQ(m.rope.type, "default");
  EXPECT_DOUBLE_EQ(m.rope.theta, 1e6);
  EXPECT_FALSE(m.sliding_window.has_value());
}

// Qwen3 with the yarn override Qwen documents for long context ("type" spelling).
TEST(HfConfigTest, Qwen3YarnOverride) {
  ModelConfig m = MustParse(R"({"hidden_size": 4096, "intermediate_size": 12288,
    "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
    "vocab_size": 151936, "max_position_embeddings": 131072, "rope_theta": 1000000,
    "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}})");
  EXPECT_EQ(m.rope.type, "yarn");
  EXPECT_EQ(*m.rope.original_max_position_embeddings, 32768);
  EXPECT_TRUE(m.rope.truncate);
  EXPECT_FALSE(m.rope.beta_fast.has_value());
}

// google/gemma-3-1b-it: v4 style with rope_local_base_freq -> per-layer-type RoPE.
TEST(HfConfigTest, Gemma3TextV4Style) {
  ModelConfig m = MustParse(R"({
    "architectures": ["Gemma3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "attn_logit_softcapping": null, "bos_token_id": 2, "cache_implementation": "hybrid",
    "eos_token_id": [1, 106], "final_logit_softcapping": null, "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 1152, "initializer_range": 0.02,
    "intermediate_size": 6912, "max_position_embeddings": 32768, "model_type": "gemma3_text",
    "num_attention_heads": 4, "num_hidden_layers": 26, "num_key_value_heads": 1,
    "pad_token_id": 0, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06,
    "rope_local_base_freq": 10000, "rope_scaling": null, "rope_theta": 1000000,
    "sliding_window": 512, "sliding_window_pattern": 6, "torch_dtype": "bfloat16",
    "transformers_version": "4.50.0.dev0", "use_cache": true, "vocab_size": 262144})");
  EXPECT_EQ(m.hidden_act, "gelu_pytorch_tanh");
  EXPECT_EQ(m.head_dim, 256);  // explicit, not 1152 / 4
  EXPECT_EQ(m.num_key_value_heads, 1);
  EXPECT_EQ(*m.sliding_window, 512);
  EXPECT_EQ(m.pad_token_ids, std::vector<int64_t>{0});
  EXPECT_EQ(m.eos_token_ids, (std::vector<int64_t>{1, 106}));
  ASSERT_EQ(m.rope_by_layer_type.size(), 2u);
  EXPECT_DOUBLE_EQ(m.RopeFor("full_attention").theta, 1e6);
  EXPECT_DOUBLE_EQ(m.RopeFor("sliding_attention").theta, 1e4);
  EXPECT_EQ(m.RopeFor("sliding_attention").type, "default");
  EXPECT_DOUBLE_EQ(m.rope.theta, 1e6);
  EXPECT_DOUBLE_EQ(m.RopeFor("unknown_type").theta, 1e6);  // falls back to `rope`
  EXPECT_EQ(m.raw["query_pre_attn_scalar"], 256);
}

// google/gemma-3-4b-it: multimodal; the decoder is in text_config, which relies on class
// defaults for several keys (supplied here as the architecture code would).
TEST(HfConfigTest, Gemma3MultimodalTextConfig) {
  const std::string text = R"({
    "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999,
    "eoi_token_index": 256000, "eos_token_id": [1, 106], "image_token_index": 262144,
    "initializer_range": 0.02, "mm_tokens_per_image": 256, "model_type": "gemma3",
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240,
                    "model_type": "gemma3_text", "num_hidden_layers": 34,
                    "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                    "sliding_window": 1024},
    "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
    "vision_config": {"hidden_size": 1152, "image_size": 896, "model_type": "siglip_vision_model"}
  })";
  auto without = ParseModelConfigText(text);
  ASSERT_FALSE(without.ok());
  EXPECT_NE(without.status().message().find("text_config: missing required key "
                                            "'num_attention_heads'"),
            std::string::npos)
      << without.status().message();

  const json gemma3_defaults = {{"num_attention_heads", 8}, {"num_key_value_heads", 4},
                                {"head_dim", 256},          {"vocab_size", 262208},
                                {"rope_theta", 1000000.0},  {"rope_local_base_freq", 10000.0},
                                {"rms_norm_eps", 1e-6},     {"max_position_embeddings", 131072}};
  auto m = ParseModelConfig(json::parse(text), gemma3_defaults);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->from_text_config);
  EXPECT_EQ(m->architectures, std::vector<std::string>{"Gemma3ForConditionalGeneration"});
  EXPECT_EQ(m->model_type, "gemma3_text");
  EXPECT_EQ(m->hidden_size, 2560);
  EXPECT_EQ(m->num_attention_heads, 8);
  EXPECT_EQ(m->head_dim, 256);
  EXPECT_EQ(m->dtype, "bfloat16");                              // from the top level
  EXPECT_EQ(m->eos_token_ids, (std::vector<int64_t>{1, 106}));  // from the top level
  const RopeConfig& full = m->RopeFor("full_attention");
  EXPECT_EQ(full.type, "linear");
  EXPECT_DOUBLE_EQ(*full.factor, 8.0);
  EXPECT_DOUBLE_EQ(full.theta, 1e6);
  EXPECT_EQ(m->RopeFor("sliding_attention").type, "default");
  EXPECT_DOUBLE_EQ(m->RopeFor("sliding_attention").theta, 1e4);
}

// Gemma 3 as transformers v5 writes it: rope_parameters keyed by layer type.
TEST(HfConfigTest, Gemma3V5PerLayerType) {
  ModelConfig m = MustParse(R"({
    "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "head_dim": 256,
    "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 6,
    "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 262208,
    "max_position_embeddings": 131072, "sliding_window": 1024, "dtype": "bfloat16",
    "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention",
                    "sliding_attention", "sliding_attention", "full_attention"],
    "rope_parameters": {
      "full_attention": {"factor": 8.0, "rope_theta": 1000000.0, "rope_type": "linear"},
      "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}}})");
  ASSERT_EQ(m.layer_types.size(), 6u);
  EXPECT_EQ(m.layer_types[5], "full_attention");
  ASSERT_EQ(m.rope_by_layer_type.size(), 2u);
  EXPECT_EQ(m.RopeFor("full_attention").type, "linear");
  EXPECT_DOUBLE_EQ(*m.RopeFor("full_attention").factor, 8.0);
  EXPECT_DOUBLE_EQ(m.RopeFor("sliding_attention").theta, 10000.0);
  EXPECT_EQ(m.rope.type, "linear");  // `rope` is the full-attention one
  EXPECT_EQ(m.dtype, "bfloat16");
}

// microsoft/Phi-3-mini-128k-instruct: longrope with the pretraining length at the top level.
TEST(HfConfigTest, Phi3LongRope) {
  json j = {{"architectures", {"Phi3ForCausalLM"}},
            {"bos_token_id", 1},
            {"eos_token_id", 32000},
            {"pad_token_id", 32000},
            {"hidden_act", "silu"},
            {"hidden_size", 3072},
            {"intermediate_size", 8192},
            {"max_position_embeddings", 131072},
            {"original_max_position_embeddings", 4096},
            {"model_type", "phi3"},
            {"num_attention_heads", 32},
            {"num_hidden_layers", 32},
            {"num_key_value_heads", 32},
            {"rms_norm_eps", 1e-05},
            {"rope_theta", 10000.0},
            {"sliding_window", 262144},
            {"tie_word_embeddings", false},
            {"torch_dtype", "bfloat16"},
            {"vocab_size", 32064}};
  j["rope_scaling"] = {{"long_factor", std::vector<double>(48, 2.0)},
                       {"short_factor", std::vector<double>(48, 1.0)},
                       {"type", "longrope"}};
  auto m = ParseModelConfig(j);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->head_dim, 96);
  EXPECT_EQ(m->rope.type, "longrope");
  EXPECT_EQ(m->rope.short_factor.size(), 48u);
  EXPECT_EQ(*m->rope.original_max_position_embeddings, 4096);
  EXPECT_FALSE(m->rope.factor.has_value());
  EXPECT_EQ(*m->sliding_window, 262144);

  j["rope_scaling"]["type"] = "su";  // the pre-release spelling
  auto su = ParseModelConfig(j);
  ASSERT_TRUE(su.ok());
  EXPECT_EQ(su->rope.type, "longrope");
}

// mistralai/Mistral-7B-v0.1 (sliding window) and Mistral-7B-Instruct-v0.3 (none).
TEST(HfConfigTest, Mistral) {
  ModelConfig v01 = MustParse(R"({
    "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.34.0.dev0", "use_cache": true, "vocab_size": 32000})");
  EXPECT_EQ(*v01.sliding_window, 4096);
  EXPECT_DOUBLE_EQ(v01.rope.theta, 10000.0);
  EXPECT_EQ(v01.bos_token_ids, std::vector<int64_t>{1});

  ModelConfig v03 = MustParse(R"({
    "architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
    "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": null,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.42.0.dev0",
    "use_cache": true, "vocab_size": 32768})");
  EXPECT_FALSE(v03.sliding_window.has_value());
  EXPECT_DOUBLE_EQ(v03.rope.theta, 1e6);
  EXPECT_EQ(v03.vocab_size, 32768);
}

TEST(HfConfigTest, LayerNormEpsilonAndTiedEmbeddings) {
  ModelConfig m = MustParse(R"({"hidden_size": 64, "intermediate_size": 256,
    "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100,
    "layer_norm_epsilon": 1e-5, "tie_word_embeddings": true, "attention_bias": true,
    "partial_rotary_factor": 0.5, "rope_theta": 10000})");
  EXPECT_DOUBLE_EQ(*m.layer_norm_eps, 1e-5);
  EXPECT_TRUE(m.tie_word_embeddings);
  EXPECT_TRUE(m.attention_bias);
  EXPECT_DOUBLE_EQ(m.rope.partial_rotary_factor, 0.5);
  EXPECT_EQ(m.max_position_embeddings, 0);
}

struct ConfigErrorCase {
  const char* json;
  const char* expect;
};

class ConfigErrorTest : public ::testing::TestWithParam<ConfigErrorCase> {};

TEST_P(ConfigErrorTest, NamesTheKey) {
  auto m = ParseModelConfigText(GetParam().json);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find(GetParam().expect), std::string::npos)
      << "want '" << GetParam().expect << "' in: " << m.status().message();
}

#define BASE_ "\"hidden_size\": 64, \"intermediate_size\": 256, \"num_hidden_layers\": 2, "
INSTANTIATE_TEST_SUITE_P(
    Errors, ConfigErrorTest,
    ::testing::Values(
        ConfigErrorCase{"[1, 2]", "not a JSON object"},
        ConfigErrorCase{"{not json", "not valid JSON"},
        ConfigErrorCase{R"({"intermediate_size": 1, "num_hidden_layers": 1,
                            "num_attention_heads": 1, "vocab_size": 1})",
                        "missing required key 'hidden_size'"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 4}",
                        "missing required key 'vocab_size'"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": \"4\", \"vocab_size\": 10}",
                        "key 'num_attention_heads' must be an integer, got \"4\""},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 4.5, \"vocab_size\": 10}",
                        "key 'num_attention_heads' must be an integer"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 0, \"vocab_size\": 10}",
                        "'num_attention_heads' must be a positive integer"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 6, \"vocab_size\": 10}",
                        "no 'head_dim' and hidden_size 64 is not a multiple"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 4, \"num_key_value_heads\": 3, "
                        "\"vocab_size\": 10}",
                        "num_key_value_heads 3 does not divide"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 4, \"vocab_size\": 10, "
                        "\"rope_scaling\": {\"rope_type\": \"linear\"}}",
                        "rope_scaling: missing key 'factor' required by rope_type 'linear'"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 4, \"vocab_size\": 10, "
                        "\"rope_scaling\": {\"type\": \"llama3\", \"factor\": 8}}",
                        "missing key 'low_freq_factor' required by rope_type 'llama3'"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 4, \"vocab_size\": 10, "
                        "\"rope_scaling\": {\"type\": \"longrope\", \"long_factor\": [1]}}",
                        "missing key 'short_factor' required by rope_type 'longrope'"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 4, \"vocab_size\": 10, "
                        "\"rope_scaling\": {\"type\": \"linear\", \"factor\": \"8\"}}",
                        "rope_scaling: key 'factor' must be a number"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 4, \"vocab_size\": 10, "
                        "\"rope_parameters\": {\"full_attention\": {\"rope_type\": \"dynamic\"}}}",
                        "rope_parameters.full_attention: missing key 'factor'"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 4, \"vocab_size\": 10, "
                        "\"rope_scaling\": \"linear\"}",
                        "key 'rope_scaling' must be an object"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 4, \"vocab_size\": 10, "
                        "\"eos_token_id\": [1, \"x\"]}",
                        "key 'eos_token_id' must be an integer"},
        ConfigErrorCase{"{" BASE_ "\"num_attention_heads\": 4, \"vocab_size\": 10, "
                        "\"rope_theta\": -1}",
                        "rope_theta must be a positive number"}));
#undef BASE_

TEST(GenerationConfigTest, Llama31) {
  auto g = ParseGenerationConfigText(R"({"bos_token_id": 128000, "do_sample": true,
    "eos_token_id": [128001, 128008, 128009], "temperature": 0.6, "top_p": 0.9,
    "transformers_version": "4.42.3"})");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(*g->bos_token_id, 128000);
  EXPECT_TRUE(*g->do_sample);
  EXPECT_DOUBLE_EQ(*g->temperature, 0.6);
  EXPECT_DOUBLE_EQ(*g->top_p, 0.9);
  EXPECT_FALSE(g->top_k.has_value());
  EXPECT_FALSE(g->pad_token_id.has_value());
  EXPECT_FALSE(g->max_new_tokens.has_value());
}

TEST(GenerationConfigTest, Qwen3AndNulls) {
  auto g = ParseGenerationConfigText(R"({"bos_token_id": 151643, "do_sample": true,
    "eos_token_id": [151645, 151643], "pad_token_id": 151643, "temperature": 0.6,
    "top_k": 20, "top_p": 0.95, "min_p": null, "repetition_penalty": 1.05,
    "max_new_tokens": 2048, "transformers_version": "4.51.0"})");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(*g->top_k, 20);
  EXPECT_EQ(*g->pad_token_id, 151643);
  EXPECT_FALSE(g->min_p.has_value());
  EXPECT_DOUBLE_EQ(*g->repetition_penalty, 1.05);
  EXPECT_EQ(*g->max_new_tokens, 2048);

  auto single = ParseGenerationConfigText(R"({"eos_token_id": 2})");
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->eos_token_ids, std::vector<int64_t>{2});

  auto bad = ParseGenerationConfigText(R"({"do_sample": "yes"})");
  EXPECT_NE(bad.status().message().find("generation_config.json: key 'do_sample' must be true"),
            std::string::npos)
      << bad.status().ToString();
}

TEST(HfConfigFileTest, LoadsFromDirectory) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() /
                       ("tessera_hf_config_test_" +
                        std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << kLlama31;
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": 128009})";

  auto m = LoadModelConfig(dir.string());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->vocab_size, 128256);
  auto g = LoadGenerationConfig(dir.string());
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->eos_token_ids, std::vector<int64_t>{128009});

  fs::remove(dir / "generation_config.json");
  EXPECT_EQ(LoadGenerationConfig(dir.string()).status().code(), StatusCode::kNotFound);
  std::ofstream(dir / "config.json") << "{\"hidden_size\": ";
  auto broken = LoadModelConfig(dir.string());
  EXPECT_NE(broken.status().message().find((dir / "config.json").string() + ": not valid JSON"),
            std::string::npos)
      << broken.status().ToString();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tessera
