#include "tessera/core/settings.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

namespace tessera {
namespace {

TEST(Settings, DefaultsAreValidAndListed) {
  Settings s;
  EXPECT_EQ(s.GetInt("threads"), 0);
  EXPECT_EQ(s.GetString("log_format"), "text");
  EXPECT_EQ(s.SourceOf("threads"), SettingSource::kDefault);
  auto j = s.ToJson();
  ASSERT_EQ(j.size(), SettingDefs().size());
  for (const auto& e : j) {
    EXPECT_TRUE(e.contains("help"));
    EXPECT_TRUE(e.contains("default"));
    EXPECT_EQ(e["env"].get<std::string>().rfind("TESSERA_", 0), 0u);
  }
}

TEST(Settings, RejectsUnknownNamesAndBadValuesClearly) {
  Settings s;
  Status st = s.Set("thread", "4", SettingSource::kCommandLine);
  EXPECT_NE(st.message().find("unknown setting 'thread'"), std::string::npos);
  st = s.Set("threads", "-1", SettingSource::kCommandLine);
  EXPECT_NE(st.message().find("outside [0, 1024]"), std::string::npos) << st.message();
  st = s.Set("threads", "four", SettingSource::kCommandLine);
  EXPECT_NE(st.message().find("not an integer"), std::string::npos);
  st = s.Set("log_format", "xml", SettingSource::kCommandLine);
  EXPECT_NE(st.message().find("not one of text, json"), std::string::npos);
}

TEST(Settings, PrecedenceDefaultFileEnvFlag) {
  std::string path = ::testing::TempDir() + "/tessera_settings_test.json";
  std::ofstream(path) << R"({"threads": 3, "log_level": "debug", "backend": "cpu"})";
  Settings s;
  ASSERT_TRUE(s.LoadFile(path).ok());
  EXPECT_EQ(s.GetInt("threads"), 3);
  EXPECT_EQ(s.SourceOf("threads"), SettingSource::kConfigFile);
  std::map<std::string, std::string> env = {{"TESSERA_THREADS", "5"},
                                            {"TESSERA_LOG_LEVEL", "warn"}};
  ASSERT_TRUE(s.LoadEnvironment([&](const char* n) -> const char* {
                 auto it = env.find(n);
                 return it == env.end() ? nullptr : it->second.c_str();
               }).ok());
  EXPECT_EQ(s.GetInt("threads"), 5);
  EXPECT_EQ(s.GetString("backend"), "cpu");  // only in the file
  ASSERT_TRUE(s.Set("threads", "7", SettingSource::kCommandLine).ok());
  EXPECT_EQ(s.GetInt("threads"), 7);
  EXPECT_EQ(s.SourceOf("threads"), SettingSource::kCommandLine);
  EXPECT_EQ(s.GetString("log_level"), "warn");
  std::remove(path.c_str());
}

TEST(Settings, BadConfigFileNamesTheFile) {
  std::string path = ::testing::TempDir() + "/tessera_settings_bad.json";
  std::ofstream(path) << "[1, 2]";
  Settings s;
  Status st = s.LoadFile(path);
  EXPECT_NE(st.message().find(path), std::string::npos);
  std::ofstream(path) << R"({"threads": 99999})";
  st = s.LoadFile(path);
  EXPECT_NE(st.message().find("threads"), std::string::npos);
  std::remove(path.c_str());
}

TEST(Settings, ParsesByteSizes) {
  EXPECT_EQ(*ParseBytes("4GiB"), 4LL << 30);
  EXPECT_EQ(*ParseBytes("512MB"), 512000000);
  EXPECT_EQ(*ParseBytes("1000"), 1000);
  EXPECT_FALSE(ParseBytes("lots").ok());
  EXPECT_FALSE(ParseBytes("4 parsecs").ok());
}

}  // namespace
}  // namespace tessera
