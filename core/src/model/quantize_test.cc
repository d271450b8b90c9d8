#include "tessera/core/model/quantize.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

// The CPU backend's quantizers (header-only, plugin ABI types only): the core's copy must agree
// with them bit for bit, since a plugin may quantize activations or COPY outputs itself.
#include "backends/cpu/convert.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

std::vector<float> RandomBlock(std::mt19937& rng, float scale) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(32);
  for (float& x : v) x = nd(rng);
  return v;
}

// Blocks that hit the edges: zeros, ties at .5, one huge value, tiny (subnormal-scale) values,
// a negative extreme for Q4's signed scale, values that overflow binary16.
std::vector<std::vector<float>> EdgeBlocks() {
  std::vector<std::vector<float>> out;
  out.push_back(std::vector<float>(32, 0.0f));
  std::vector<float> ties(32);
  for (int i = 0; i < 32; ++i) ties[i] = (i - 16) * 0.5f;
  out.push_back(ties);
  std::vector<float> huge(32, 1.0f);
  huge[5] = 1e6f;
  out.push_back(huge);
  std::vector<float> tiny(32);
  for (int i = 0; i < 32; ++i) tiny[i] = (i % 7 - 3) * 1e-7f;
  out.push_back(tiny);
  std::vector<float> neg(32, 0.25f);
  neg[31] = -3.0f;
  out.push_back(neg);
  out.push_back(std::vector<float>(32, 1e5f));
  return out;
}

TEST(QuantizeTest, BlocksMatchCpuBackendBitForBit) {
  std::mt19937 rng(7);
  std::vector<std::vector<float>> blocks = EdgeBlocks();
  for (int i = 0; i < 2000; ++i) blocks.push_back(RandomBlock(rng, i % 2 ? 0.02f : 3.0f));
  for (const auto& b : blocks) {
    uint8_t core8[34], cpu8[34], core4[18], cpu4[18];
    QuantizeBlockQ8(b.data(), core8);
    cpu::QuantizeBlockQ8(b.data(), cpu8);
    ASSERT_EQ(std::memcmp(core8, cpu8, 34), 0);
    QuantizeBlockQ4(b.data(), core4);
    cpu::QuantizeBlockQ4(b.data(), cpu4);
    ASSERT_EQ(std::memcmp(core4, cpu4, 18), 0);
  }
}

TEST(QuantizeTest, HalfConversionMatchesCpuBackend) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = F16BitsToF32(static_cast<uint16_t>(h));
    const float g = cpu::F16ToF32(static_cast<uint16_t>(h));
    ASSERT_EQ(std::memcmp(&f, &g, 4), 0) << h;
  }
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    const float f = std::bit_cast<float>(bits(rng));
    ASSERT_EQ(F32ToF16Bits(f), cpu::F32ToF16(f)) << f;
  }
}

// Round trip: Q8 is within d / 2 of x (d = amax / 127) plus the scale's binary16 rounding
// (relative 2^-11, times |q| <= 127); Q4 within |d| (d = m / -8; the value opposite the extreme
// clamps from 8 to 7 steps), likewise plus the scale rounding.
TEST(QuantizeTest, RoundTripBounds) {
  std::mt19937 rng(11);
  for (int i = 0; i < 500; ++i) {
    const std::vector<float> x = RandomBlock(rng, 0.05f);
    float amax = 0;
    for (float v : x) amax = std::max(amax, std::fabs(v));
    uint8_t b8[34], b4[18];
    QuantizeBlockQ8(x.data(), b8);
    QuantizeBlockQ4(x.data(), b4);
    for (int k = 0; k < 32; ++k) {
      const float d8 = amax / 127, d4 = amax / 8;
      EXPECT_LE(std::fabs(cpu::DequantQ8(b8, k) - x[k]), d8 / 2 + amax * 0x1p-11f) << k;
      EXPECT_LE(std::fabs(cpu::DequantQ4(b4, k) - x[k]), d4 + amax * 0x1p-11f) << k;
    }
  }
}

TEST(QuantizeTest, ParseKind) {
  EXPECT_EQ(*ParseQuantKind("q8"), QuantKind::kQ8);
  EXPECT_EQ(*ParseQuantKind("q4"), QuantKind::kQ4);
  EXPECT_EQ(*ParseQuantKind("none"), QuantKind::kNone);
  auto bad = ParseQuantKind("q5");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("none, q8, q4"), std::string::npos);
}

// A tiny checkpoint: two bf16 matrices (K = 64) and one f32 matrix with K = 40.
void WriteCheckpoint(const fs::path& dir, int variant) {
  fs::create_directories(dir);
  std::mt19937 rng(static_cast<unsigned>(5 + variant));
  std::normal_distribution<float> nd(0.0f, 0.1f);
  nlohmann::json h;
  std::string data;
  auto add = [&](const std::string& name, const char* dtype, int64_t rows, int64_t k) {
    const size_t begin = data.size();
    for (int64_t i = 0; i < rows * k; ++i) {
      const float f = nd(rng);
      if (std::string(dtype) == "F32") {
        data.append(reinterpret_cast<const char*>(&f), 4);
      } else {
        const uint16_t b = cpu::F32ToBf16(f);
        data.append(reinterpret_cast<const char*>(&b), 2);
      }
    }
    h[name] = {{"dtype", dtype}, {"shape", {rows, k}}, {"data_offsets", {begin, data.size()}}};
  };
  add("model.layers.0.mlp.up_proj.weight", "BF16", 8 + variant, 64);
  add("model.layers.0.mlp.down_proj.weight", "BF16", 4, 96);
  add("model.layers.0.odd.weight", "F32", 3, 40);
  std::string hs = h.dump();
  uint64_t n = hs.size();
  std::ofstream out(dir / "model.safetensors", std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << hs << data;
}

class QuantCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("tsr_quant_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    WriteCheckpoint(root_ / "model", 0);
    opts_.dir = (root_ / "cache").string();
    opts_.threads = 2;
  }
  void TearDown() override { fs::remove_all(root_); }

  StatusOr<std::unique_ptr<QuantizedWeights>> LoadQ(QuantKind kind = QuantKind::kQ8) {
    TSR_ASSIGN_OR_RETURN(ckpt_, Checkpoint::Open((root_ / "model").string()));
    return QuantizedWeights::Load(*ckpt_, names_, kind, opts_);
  }

  fs::path root_;
  QuantCacheOptions opts_;
  std::unique_ptr<Checkpoint> ckpt_;
  std::vector<std::string> names_ = {"model.layers.0.mlp.up_proj.weight",
                                     "model.layers.0.mlp.down_proj.weight"};
};

TEST_F(QuantCacheTest, MissThenHitWithIdenticalBytes) {
  auto a = LoadQ();
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_FALSE((*a)->from_cache());
  EXPECT_EQ((*a)->path().rfind(opts_.dir, 0), 0u);
  for (const std::string& n : names_) {
    const auto* e = (*a)->Find(n);
    ASSERT_NE(e, nullptr);
    const TensorInfo* t = ckpt_->Find(n);
    std::vector<uint8_t> want(QuantizedBytes(QuantKind::kQ8, t->shape[0], t->shape[1]));
    ASSERT_TRUE(QuantizeTensor(*t, QuantKind::kQ8, want.data()).ok());
    ASSERT_EQ(e->nbytes, want.size());
    EXPECT_EQ(std::memcmp(e->data, want.data(), want.size()), 0);
  }
  auto b = LoadQ();
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE((*b)->from_cache());
  EXPECT_EQ((*b)->path(), (*a)->path());
  // Q4 is a different file.
  auto c = LoadQ(QuantKind::kQ4);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->from_cache());
  EXPECT_NE((*c)->path(), (*a)->path());
  // Nothing is written next to the checkpoint.
  for (const auto& e : fs::directory_iterator(root_ / "model"))
    EXPECT_EQ(e.path().filename(), "model.safetensors");
}

TEST_F(QuantCacheTest, MtimeOrSizeChangeMisses) {
  auto a = LoadQ();
  ASSERT_TRUE(a.ok());
  const std::string first = (*a)->path();
  // Same bytes, new mtime.
  const fs::path file = root_ / "model" / "model.safetensors";
  fs::last_write_time(file, fs::last_write_time(file) + std::chrono::seconds(5));
  auto b = LoadQ();
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE((*b)->from_cache());
  EXPECT_NE((*b)->path(), first);
  // Different content and size.
  WriteCheckpoint(root_ / "model", 1);
  auto c = LoadQ();
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->from_cache());
  EXPECT_EQ((*c)->Find(names_[0])->rows, 9);
  auto d = LoadQ();
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)->from_cache());
}

TEST_F(QuantCacheTest, TruncatedOrCorruptFileIsRebuilt) {
  std::string path;
  {
    auto a = LoadQ();
    ASSERT_TRUE(a.ok());
    path = (*a)->path();
  }
  const auto size = fs::file_size(path);
  fs::resize_file(path, size - 10);
  auto b = LoadQ();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_FALSE((*b)->from_cache());
  EXPECT_EQ(fs::file_size(path), size);
  b->reset();
  {  // flip a byte of the index
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(130);
    f.put('\x7f');
  }
  auto c = LoadQ();
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->from_cache());
  auto d = LoadQ();
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)->from_cache());
}

TEST_F(QuantCacheTest, RejectsUnquantizableTensor) {
  names_.push_back("model.layers.0.odd.weight");  // K = 40
  auto a = LoadQ();
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("multiple of 32"), std::string::npos);
}

TEST(QuantizeTest, DefaultCacheRoot) {
  auto env = [](std::map<std::string, std::string> m) {
    return [m](const char* k) -> const char* {
      auto it = m.find(k);
      return it == m.end() ? nullptr : it->second.c_str();
    };
  };
  EXPECT_EQ(DefaultCacheRoot(env({{"XDG_CACHE_HOME", "/x/c"}, {"HOME", "/h"}})), "/x/c/tessera");
  EXPECT_EQ(DefaultCacheRoot(env({{"HOME", "/h"}})), "/h/.cache/tessera");
  EXPECT_EQ(DefaultCacheRoot(env({})), "/tmp/tessera-cache");
}

}  // namespace
}  // namespace tessera
