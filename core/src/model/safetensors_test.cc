#include "tessera/core/model/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace tessera {
namespace {

const std::string kFixtures = TESSERA_SAFETENSORS_FIXTURES;

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

template <typename T>
std::vector<T> Values(const TensorInfo& t) {
  std::vector<T> out(t.nbytes / sizeof(T));
  std::memcpy(out.data(), t.data, t.nbytes);  // data is not necessarily aligned
  return out;
}

TEST(DTypeTest, NamesSizesAndParsing) {
  EXPECT_EQ(ParseStDType("BF16"), StDType::kBF16);
  EXPECT_EQ(ParseStDType("F8_E5M2"), StDType::kF8E5M2);
  EXPECT_EQ(ParseStDType("f32"), std::nullopt);  // case-sensitive, as in the format
  EXPECT_EQ(ParseStDType("F4"), std::nullopt);
  EXPECT_STREQ(StDTypeName(StDType::kBool), "BOOL");
  EXPECT_EQ(StDTypeSize(StDType::kF64), 8u);
  EXPECT_EQ(StDTypeSize(StDType::kBF16), 2u);
  EXPECT_EQ(StDTypeSize(StDType::kF8E4M3), 1u);
  EXPECT_TRUE(StDTypeIsComputeSupported(StDType::kF16));
  EXPECT_FALSE(StDTypeIsComputeSupported(StDType::kF8E4M3));
}

TEST(SafetensorsTest, OpensValidFile) {
  auto file = SafetensorsFile::Open(kFixtures + "/good.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const SafetensorsFile& f = **file;
  ASSERT_EQ(f.tensors().size(), 6u);
  EXPECT_EQ(f.metadata().at("format"), "pt");

  const TensorInfo* a = f.Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, StDType::kF32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->numel(), 6);
  EXPECT_EQ(a->nbytes, 24u);
  EXPECT_EQ(Values<float>(*a), (std::vector<float>{0.0f, 1.5f, -2.0f, 3.25f, 4.0f, -5.0f}));
  EXPECT_EQ(a->file_offset, 8 + f.header_size());  // first tensor starts the data section

  const TensorInfo* b = f.Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, StDType::kF16);
  EXPECT_EQ(Values<uint16_t>(*b), (std::vector<uint16_t>{0x3C00, 0xC000, 0x3800, 0x7BFF}));

  const TensorInfo* c = f.Find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->dtype, StDType::kBF16);
  EXPECT_EQ(Values<uint16_t>(*c), (std::vector<uint16_t>{0x3F80, 0xBFC0, 0x4040, 0x3E20}));

  const TensorInfo* d = f.Find("d");
  ASSERT_NE(d, nullptr);
  EXPECT_TRUE(d->shape.empty());
  EXPECT_EQ(d->numel(), 1);
  EXPECT_EQ(Values<int64_t>(*d), (std::vector<int64_t>{-7}));

  const TensorInfo* empty = f.Find("empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->numel(), 0);
  EXPECT_EQ(empty->nbytes, 0u);

  EXPECT_EQ(f.Find("flags")->dtype, StDType::kBool);
  EXPECT_EQ(f.Find("missing"), nullptr);
  EXPECT_EQ(f.tensor_bytes(), 24u + 8u + 8u + 8u + 0u + 3u);

  // Tensors come back in file order, and their data lies inside the file.
  uint64_t prev = 0;
  for (const TensorInfo& t : f.tensors()) {
    EXPECT_GE(t.file_offset, prev);
    EXPECT_LE(t.file_offset + t.nbytes, f.file_size());
    prev = t.file_offset;
  }
}

TEST(SafetensorsTest, FromMemoryMatchesOpen) {
  auto file = SafetensorsFile::FromMemory(ReadBytes(kFixtures + "/good.safetensors"), "mem");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->path(), "mem");
  EXPECT_EQ((*file)->tensors().size(), 6u);
  EXPECT_EQ(Values<float>(*(*file)->Find("a"))[1], 1.5f);
}

TEST(SafetensorsTest, EmptyHeaderIsValid) {
  auto file = SafetensorsFile::Open(kFixtures + "/empty_header.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE((*file)->tensors().empty());
}

TEST(SafetensorsTest, Fp8IsRecognisedButNotComputable) {
  const std::string path = kFixtures + "/fp8.safetensors";
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const TensorInfo* w = (*file)->Find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, StDType::kF8E4M3);
  Status s = RequireComputeDType(*w, (*file)->path());
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("'w'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("F8_E4M3"), std::string::npos) << s.message();
  EXPECT_TRUE(RequireComputeDType(*w, "x").code() == StatusCode::kUnsupported);
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  auto file = SafetensorsFile::Open(kFixtures + "/no_such.safetensors");
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_NE(file.status().message().find("no_such.safetensors"), std::string::npos);
}

TEST(SafetensorsTest, DirectoryIsRejected) {
  auto file = SafetensorsFile::Open(kFixtures + "/ckpt_single");
  EXPECT_FALSE(file.ok());
}

struct BadCase {
  const char* file;
  const char* expect;  // substring of the error
  const char* tensor;  // the tensor the message must name, or nullptr
};

class MalformedTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(MalformedTest, GivesClearError) {
  const BadCase& c = GetParam();
  const std::string path = kFixtures + "/bad/" + c.file + ".safetensors";
  auto file = SafetensorsFile::Open(path);
  ASSERT_FALSE(file.ok()) << path << " unexpectedly opened";
  const std::string& msg = file.status().message();
  EXPECT_EQ(file.status().code(), StatusCode::kInvalidArgument) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
  EXPECT_NE(msg.find(c.expect), std::string::npos) << "want '" << c.expect << "' in: " << msg;
  if (c.tensor != nullptr) {
    EXPECT_NE(msg.find(std::string("'") + c.tensor + "'"), std::string::npos)
        << "message does not name tensor " << c.tensor << ": " << msg;
  }
  // The in-memory path gives the same verdict.
  auto mem = SafetensorsFile::FromMemory(ReadBytes(path), path);
  EXPECT_EQ(mem.status().ToString(), file.status().ToString());
}

INSTANTIATE_TEST_SUITE_P(
    BadFiles, MalformedTest,
    ::testing::Values(
        BadCase{"truncated", "too short", nullptr}, BadCase{"header_len_zero", "is < 2", nullptr},
        BadCase{"header_len_one", "is < 2", nullptr},
        BadCase{"header_longer_than_file", "larger than the rest of the file", nullptr},
        BadCase{"absurd_header_size", "exceeds the 100 MB limit", nullptr},
        BadCase{"header_over_100mb", "exceeds the 100 MB limit", nullptr},
        BadCase{"not_json", "not valid JSON", nullptr},
        BadCase{"header_not_object", "not a JSON object", nullptr},
        BadCase{"invalid_utf8", "not valid JSON", nullptr},
        BadCase{"unknown_dtype", "unknown dtype 'F7'", "w"},
        BadCase{"missing_dtype", "missing key 'dtype'", "w"},
        BadCase{"shape_size_mismatch", "need 16", "w"},
        BadCase{"offsets_out_of_file", "past the data section", "w"},
        BadCase{"offsets_reversed", "< begin", "w"},
        BadCase{"overlapping", "overlap tensor 'a'", "b"},
        BadCase{"duplicate_names", "duplicate tensor name", "w"},
        BadCase{"negative_shape", "negative", "w"}, BadCase{"shape_overflow", "overflows", "w"},
        BadCase{"bytes_overflow", "overflows the byte count", "w"},
        BadCase{"float_shape", "non-negative integer", "w"},
        BadCase{"metadata_not_string", "'__metadata__' value", nullptr},
        BadCase{"deep_nesting", "nesting", nullptr},
        BadCase{"entry_not_object", "not a JSON object", "w"}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return std::string(p.param.file); });

// Every strict prefix of a valid file is invalid and must be rejected cleanly.
TEST(SafetensorsRobustnessTest, EveryTruncationIsRejected) {
  const std::vector<uint8_t> good = ReadBytes(kFixtures + "/good.safetensors");
  ASSERT_GT(good.size(), 8u);
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> prefix(good.begin(), good.begin() + static_cast<ptrdiff_t>(n));
    auto file = SafetensorsFile::FromMemory(std::move(prefix), "prefix");
    EXPECT_FALSE(file.ok()) << "prefix of " << n << " bytes opened";
  }
}

// Single-byte corruptions anywhere in the header either parse to an in-bounds view or fail.
TEST(SafetensorsRobustnessTest, ByteFlipsNeverEscapeTheFile) {
  const std::vector<uint8_t> good = ReadBytes(kFixtures + "/good.safetensors");
  const uint8_t patterns[] = {0x00, 0x01, 0x20, 0x2D, 0x39, 0x7F, 0xFF};
  for (size_t pos = 0; pos < good.size(); ++pos) {
    for (uint8_t p : patterns) {
      std::vector<uint8_t> bytes = good;
      bytes[pos] = p;
      auto file = SafetensorsFile::FromMemory(std::move(bytes), "flip");
      if (!file.ok()) continue;
      for (const TensorInfo& t : (*file)->tensors()) {
        ASSERT_LE(t.file_offset + t.nbytes, (*file)->file_size()) << "pos " << pos;
      }
    }
  }
}

}  // namespace
}  // namespace tessera
