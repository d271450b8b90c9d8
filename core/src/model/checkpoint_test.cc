#include "tessera/core/model/checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace tessera {
namespace {

const std::string kFixtures = TESSERA_SAFETENSORS_FIXTURES;

TEST(CheckpointTest, SingleFile) {
  auto ckpt = Checkpoint::Open(kFixtures + "/ckpt_single");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  const Checkpoint& c = **ckpt;
  EXPECT_EQ(c.files().size(), 1u);
  EXPECT_EQ(c.num_tensors(), 4u);
  EXPECT_EQ(c.TensorNames(),
            (std::vector<std::string>{"lm_head.weight", "model.embed_tokens.weight",
                                      "model.layers.0.mlp.up_proj.weight", "model.norm.weight"}));
  EXPECT_EQ(c.total_bytes(), 32u + 8u + 8u + 16u);

  // With or without the "model." prefix.
  const TensorInfo* up = c.Find("layers.0.mlp.up_proj.weight");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->name, "model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ(c.Find("model.layers.0.mlp.up_proj.weight"), up);
  EXPECT_EQ(c.Find("lm_head.weight")->dtype, StDType::kBF16);
  EXPECT_EQ(c.Find("model.lm_head.weight"), c.Find("lm_head.weight"));
  EXPECT_EQ(c.Find("layers.9.mlp.up_proj.weight"), nullptr);
  EXPECT_EQ(c.FileOf(up), c.files()[0].get());
}

TEST(CheckpointTest, Sharded) {
  auto ckpt = Checkpoint::Open(kFixtures + "/ckpt_sharded");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  const Checkpoint& c = **ckpt;
  EXPECT_EQ(c.files().size(), 2u);
  EXPECT_EQ(c.num_tensors(), 5u);
  EXPECT_EQ(c.total_bytes(), 32u + 8u + 8u + 8u + 16u);
  const TensorInfo* up1 = c.Find("layers.1.mlp.up_proj.weight");
  ASSERT_NE(up1, nullptr);
  EXPECT_NE(c.FileOf(up1)->path().find("model-00002-of-00002.safetensors"), std::string::npos);
  uint16_t first = 0;
  std::memcpy(&first, up1->data, 2);
  EXPECT_EQ(first, 0x4500);  // 5.0 in binary16
  auto missing = c.Get("model.layers.7.self_attn.q_proj.weight");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("layers.7.self_attn.q_proj"), std::string::npos);
  auto norm = c.Get("norm.weight");
  ASSERT_TRUE(norm.ok());
  EXPECT_EQ((*norm)->name, "model.norm.weight");
}

TEST(CheckpointTest, LoneUnprefixedFile) {
  auto ckpt = Checkpoint::Open(kFixtures + "/ckpt_unprefixed");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  const TensorInfo* up = (*ckpt)->Find("model.layers.0.mlp.up_proj.weight");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->name, "layers.0.mlp.up_proj.weight");
  EXPECT_NE((*ckpt)->Find("embed_tokens.weight"), nullptr);
}

void ExpectError(const std::string& dir, StatusCode code, const std::string& want) {
  auto ckpt = Checkpoint::Open(kFixtures + "/" + dir);
  ASSERT_FALSE(ckpt.ok()) << dir;
  EXPECT_EQ(ckpt.status().code(), code) << ckpt.status().ToString();
  EXPECT_NE(ckpt.status().message().find(want), std::string::npos)
      << "want '" << want << "' in: " << ckpt.status().message();
}

TEST(CheckpointTest, Errors) {
  ExpectError("ckpt_two_files", StatusCode::kInvalidArgument, "a.safetensors b.safetensors");
  ExpectError("ckpt_bad_shard_name", StatusCode::kInvalidArgument,
              "'../ckpt_single/model.safetensors' is not a plain file name");
  ExpectError("ckpt_missing_tensor", StatusCode::kInvalidArgument,
              "tensor 'lm_head.weight' is mapped to shard 'model-00001-of-00002.safetensors' but");
  ExpectError("ckpt_missing_shard", StatusCode::kNotFound,
              "shard 'model-00002-of-00002.safetensors' (for tensor 'lm_head.weight')");
  ExpectError("ckpt_duplicate", StatusCode::kInvalidArgument, "'model.norm.weight' is in both");
  ExpectError("ckpt_empty_dir", StatusCode::kNotFound, "no model.safetensors");
  ExpectError("no_such_dir", StatusCode::kNotFound, "not a directory");
}

}  // namespace
}  // namespace tessera
