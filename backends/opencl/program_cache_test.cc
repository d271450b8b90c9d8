// The kernel-program cache: round trip, key checks, the folder resolution order.
#include "backends/opencl/program_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace tessera::gpu {
namespace {

namespace fs = std::filesystem;

class ProgramCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("tessera_pc_" + std::to_string(getpid()))).string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(ProgramCacheTest, RoundTripsAndCreatesTheFolder) {
  const std::vector<unsigned char> bin = {1, 2, 3, 0, 255};
  EXPECT_EQ(WriteCacheEntry(dir_ + "/sub", "key-a", bin), "");
  auto got = ReadCacheEntry(dir_ + "/sub", "key-a");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, bin);
  EXPECT_FALSE(ReadCacheEntry(dir_ + "/sub", "key-b").has_value());
}

TEST_F(ProgramCacheTest, RejectsAnotherKeysEntryAtTheSamePath) {
  // A hash collision (simulated by renaming b's file to a's name) must not be served.
  ASSERT_EQ(WriteCacheEntry(dir_, "key-b", {9, 9}), "");
  fs::rename(CacheEntryPath(dir_, "key-b"), CacheEntryPath(dir_, "key-a"));
  EXPECT_FALSE(ReadCacheEntry(dir_, "key-a").has_value());
}

TEST_F(ProgramCacheTest, IgnoresTruncatedAndForeignFiles) {
  fs::create_directories(dir_);
  std::ofstream(CacheEntryPath(dir_, "k"), std::ios::binary) << "not a cache entry";
  EXPECT_FALSE(ReadCacheEntry(dir_, "k").has_value());
}

TEST(ProgramCacheDir, OptionThenEnvironmentThenXdg) {
  EXPECT_EQ(ResolveCacheDir("/opt/x", "TSR_TEST_CACHE_ENV", "opencl"), "/opt/x");
  EXPECT_EQ(ResolveCacheDir("none", "TSR_TEST_CACHE_ENV", "opencl"), "");
  setenv("TSR_TEST_CACHE_ENV", "/env/dir", 1);
  EXPECT_EQ(ResolveCacheDir("", "TSR_TEST_CACHE_ENV", "opencl"), "/env/dir");
  unsetenv("TSR_TEST_CACHE_ENV");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(ResolveCacheDir("", "TSR_TEST_CACHE_ENV", "opencl"), "/xdg/tessera/opencl");
}

}  // namespace
}  // namespace tessera::gpu
