// Loader tests: discovery order, rejection reasons, deduplication, filtering. Every bad plugin
// must be rejected with a clear reason, never a crash.
#include "tessera/core/plugin_loader.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace tessera {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

const PluginCandidate* FindCandidate(const PluginRegistry& reg, const std::string& path) {
  for (const auto& c : reg.candidates())
    if (c.path == path) return &c;
  return nullptr;
}

LoaderOptions Only(std::vector<std::string> paths) {
  LoaderOptions o;
  o.explicit_paths = std::move(paths);
  return o;
}

TEST(PluginLoader, LoadsAGoodPluginAndOpensItsContext) {
  auto reg = PluginRegistry::Discover(Only({Env("TP_TESTGPU")}));
  ASSERT_EQ(reg->plugins().size(), 1u);
  Plugin* p = reg->Find("testgpu");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->device_count(), 1);
  EXPECT_EQ(p->absence_reason(), "");
  EXPECT_EQ(FindCandidate(*reg, Env("TP_TESTGPU"))->reason, "loaded");
}

TEST(PluginLoader, RejectsAnotherAbiMajorWithAReason) {
  auto reg = PluginRegistry::Discover(Only({Env("TP_BAD_ABI")}));
  EXPECT_TRUE(reg->plugins().empty());
  const PluginCandidate* c = FindCandidate(*reg, Env("TP_BAD_ABI"));
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->loaded);
  EXPECT_NE(c->reason.find("built for plugin ABI 99."), std::string::npos) << c->reason;
}

TEST(PluginLoader, RejectsALibraryWithoutTheEntryPoint) {
  auto reg = PluginRegistry::Discover(Only({Env("TP_NO_ENTRY")}));
  EXPECT_TRUE(reg->plugins().empty());
  EXPECT_NE(FindCandidate(*reg, Env("TP_NO_ENTRY"))->reason.find("no tsr_plugin_init entry point"),
            std::string::npos);
}

TEST(PluginLoader, RejectsAFileThatIsNotALibrary) {
  auto reg = PluginRegistry::Discover(Only({Env("TP_NOTALIB")}));
  EXPECT_TRUE(reg->plugins().empty());
  EXPECT_NE(FindCandidate(*reg, Env("TP_NOTALIB"))->reason.find("not a loadable shared library"),
            std::string::npos);
}

TEST(PluginLoader, MissingPathIsReportedNotFatal) {
  auto reg = PluginRegistry::Discover(Only({"/nonexistent/libtessera_backend_x.so"}));
  EXPECT_TRUE(reg->plugins().empty());
  EXPECT_EQ(reg->candidates().at(0).reason, "no such file or directory");
  Status s = reg->ExplainMissing("cpu");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent/libtessera_backend_x.so (--backend-path)"),
            std::string::npos)
      << s.message();
}

TEST(PluginLoader, DuplicateIdKeepsTheHighestProbeScore) {
  // Lower score first: the later, better build supersedes it.
  auto reg = PluginRegistry::Discover(Only({Env("TP_TESTGPU"), Env("TP_TESTGPU_BETTER")}));
  ASSERT_EQ(reg->plugins().size(), 1u);
  EXPECT_EQ(reg->Find("testgpu")->path(), Env("TP_TESTGPU_BETTER"));
  EXPECT_NE(FindCandidate(*reg, Env("TP_TESTGPU"))->reason.find("superseded"), std::string::npos);
  // Higher score first: the later one is the rejected duplicate.
  reg = PluginRegistry::Discover(Only({Env("TP_TESTGPU_BETTER"), Env("TP_TESTGPU")}));
  ASSERT_EQ(reg->plugins().size(), 1u);
  EXPECT_EQ(reg->Find("testgpu")->path(), Env("TP_TESTGPU_BETTER"));
  EXPECT_NE(FindCandidate(*reg, Env("TP_TESTGPU"))->reason.find("duplicate id 'testgpu'"),
            std::string::npos);
}

TEST(PluginLoader, FolderScanFindsOnlyPluginNamedFilesAndRejectsBadOnes) {
  auto reg = PluginRegistry::Discover(Only({Env("TP_DIR")}));
  // The folder holds libtessera_backend_testgpu.so (good) and libtessera_backend_notalib.so.
  ASSERT_NE(reg->Find("testgpu"), nullptr);
  const PluginCandidate* bad = FindCandidate(*reg, Env("TP_NOTALIB"));
  ASSERT_NE(bad, nullptr);
  EXPECT_FALSE(bad->loaded);
  // Files not named libtessera_backend_*.so are not candidates when scanning a folder.
  EXPECT_EQ(FindCandidate(*reg, Env("TP_NO_ENTRY")), nullptr);
}

TEST(PluginLoader, FilterKeepsOnlyNamedIds) {
  LoaderOptions o = Only({Env("TP_TESTGPU"), Env("TP_TESTNPU")});
  o.only_ids = {"testnpu"};
  auto reg = PluginRegistry::Discover(o);
  ASSERT_EQ(reg->plugins().size(), 1u);
  EXPECT_EQ(reg->plugins()[0]->id(), "testnpu");
  EXPECT_EQ(FindCandidate(*reg, Env("TP_TESTGPU"))->reason, "filtered out by TESSERA_BACKENDS");
}

TEST(PluginLoader, UnknownPluginOptionFailsTheContextWithTheKey) {
  LoaderOptions o = Only({Env("TP_TESTGPU")});
  o.plugin_options["testgpu"] = {{"frobnicate", "1"}};
  auto reg = PluginRegistry::Discover(o);
  EXPECT_TRUE(reg->plugins().empty());
  EXPECT_NE(FindCandidate(*reg, Env("TP_TESTGPU"))->reason.find("unknown option 'frobnicate'"),
            std::string::npos);
}

TEST(PluginLoader, SearchOrderIsExplicitThenEnvThenBundledThenSystem) {
  LoaderOptions o;
  o.explicit_paths = {Env("TP_TESTGPU_BETTER")};
  o.env_paths = {Env("TP_TESTGPU")};
  o.bundled_dir = "/nonexistent/bundled";
  o.system_dir = "/nonexistent/system";
  auto reg = PluginRegistry::Discover(o);
  ASSERT_EQ(reg->searched().size(), 4u);
  EXPECT_NE(reg->searched()[0].find("--backend-path"), std::string::npos);
  EXPECT_NE(reg->searched()[1].find("TESSERA_BACKEND_PATH"), std::string::npos);
  EXPECT_NE(reg->searched()[2].find("bundled"), std::string::npos);
  EXPECT_NE(reg->searched()[3].find("system"), std::string::npos);
  // Same id in both: the explicit one has the higher score and wins.
  EXPECT_EQ(reg->Find("testgpu")->path(), Env("TP_TESTGPU_BETTER"));
}

TEST(PluginLoader, EnvironmentDefaultsNeverIncludeTheCurrentDirectory) {
  LoaderOptions o = LoaderOptions::FromEnvironment();
  EXPECT_NE(o.bundled_dir, "");
  EXPECT_NE(o.bundled_dir, ".");
  for (const auto& p : o.env_paths) EXPECT_NE(p, ".");
}

}  // namespace
}  // namespace tessera
