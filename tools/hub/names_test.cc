#include "tessera/hub/names.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace tessera::hub {
namespace {

namespace fs = std::filesystem;

TEST(ParseRepoRef, AcceptsHubIds) {
  auto r = ParseRepoRef("Qwen/Qwen2.5-0.5B-Instruct");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->repo, "Qwen/Qwen2.5-0.5B-Instruct");
  EXPECT_EQ(r->revision, "main");
  EXPECT_EQ(r->ToString(), "Qwen/Qwen2.5-0.5B-Instruct");
  r = ParseRepoRef("org/name@v1.0");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, "v1.0");
  EXPECT_EQ(r->ToString(), "org/name@v1.0");
  r = ParseRepoRef("hf.co/org/name@refs/pr/3");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->repo, "org/name");
  EXPECT_EQ(r->revision, "refs/pr/3");
  r = ParseRepoRef("https://huggingface.co/BAAI/bge-m3");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->repo, "BAAI/bge-m3");
}

TEST(ParseRepoRef, RejectsWhatTheHubRejects) {
  for (const char* s :
       {"name", "a/b/c", "org/na--me", "org/../x", "-org/x", "org/x-", "org/x.git", "org/", "/x",
        "org/name@", "org/name@../x", "org/name@a//b", "or g/x", "org/x\\y"})
    EXPECT_FALSE(ParseRepoRef(s).ok()) << s;
}

TEST(ParseRepoRef, CommitHashes) {
  EXPECT_TRUE(IsCommitHash(std::string(40, 'a')));
  EXPECT_FALSE(IsCommitHash(std::string(40, 'A')));
  EXPECT_FALSE(IsCommitHash(std::string(39, 'a')));
}

class ResolveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("tessera-names-" + std::to_string(getpid()));
    fs::remove_all(root_);
    o_.cache_dir = (root_ / "hub").string();
    o_.catalogue_file = (root_ / "models.json").string();
  }
  void TearDown() override { fs::remove_all(root_); }
  // A cached snapshot of `repo` at `commit`, named by refs/`ref`.
  fs::path Cache(const std::string& repo, const std::string& ref, const std::string& commit) {
    std::string folder =
        "models--" + repo.substr(0, repo.find('/')) + "--" + repo.substr(repo.find('/') + 1);
    fs::path dir = fs::path(o_.cache_dir) / folder;
    fs::create_directories(dir / "snapshots" / commit);
    fs::create_directories(dir / "refs");
    if (!ref.empty()) std::ofstream(dir / "refs" / ref) << commit;
    return dir / "snapshots" / commit;
  }
  fs::path root_;
  HubOptions o_;
};

TEST_F(ResolveTest, AliasesFromTheBuiltInCatalogue) {
  auto m = ResolveModel("qwen2.5:0.5b", o_);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->kind, ResolvedModel::Kind::kHub);
  EXPECT_EQ(m->ref.repo, "Qwen/Qwen2.5-0.5B-Instruct");
  EXPECT_EQ(m->alias, "qwen2.5:0.5b");
  EXPECT_FALSE(m->present());
  m = ResolveModel("llama3.2:1b", o_);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->gated);
  for (const auto& e : BuiltinCatalogue()) EXPECT_TRUE(ParseRepoRef(e.target).ok()) << e.alias;
  fs::path snap = Cache("Qwen/Qwen2.5-0.5B-Instruct", "main", std::string(40, 'a'));
  m = ResolveModel("qwen2.5:0.5b", o_);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->dir, snap.string());
}

TEST_F(ResolveTest, RepoIdsAndRevisions) {
  fs::path main = Cache("org/m", "main", std::string(40, 'a'));
  fs::path v1 = Cache("org/m", "v1", std::string(40, 'b'));
  fs::path pinned = Cache("org/m", "", std::string(40, 'c'));
  auto m = ResolveModel("org/m", o_);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->dir, main.string());
  EXPECT_FALSE(m->revision_given);
  m = ResolveModel("org/m@v1", o_);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->dir, v1.string());
  EXPECT_TRUE(m->revision_given);
  m = ResolveModel("org/m@" + std::string(40, 'c'), o_);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->dir, pinned.string());
  m = ResolveModel("org/m@v2", o_);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->present());
  EXPECT_EQ(m->ref.revision, "v2");
}

TEST_F(ResolveTest, FoldersComeFirst) {
  fs::create_directories(root_ / "my-model");
  auto m = ResolveModel((root_ / "my-model").string(), o_);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, ResolvedModel::Kind::kFolder);
  EXPECT_EQ(m->dir, (root_ / "my-model").string());
  m = ResolveModel("./surely-not-here", o_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  m = ResolveModel("no-such-alias", o_);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("unknown model"), std::string::npos);
}

TEST_F(ResolveTest, UserCatalogueAddsAndOverrides) {
  fs::create_directories(root_);
  std::ofstream(o_.catalogue_file) << R"({
    "mine": "me/my-model@v2",
    "qwen2.5:0.5b": {"repo": "me/qwen-fork", "description": "my fork"},
    "pinned": {"repo": "me/x", "revision": "abc", "gated": true}
  })";
  auto m = ResolveModel("mine", o_);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->ref.repo, "me/my-model");
  EXPECT_EQ(m->ref.revision, "v2");
  EXPECT_TRUE(m->revision_given);
  m = ResolveModel("qwen2.5:0.5b", o_);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->ref.repo, "me/qwen-fork");
  m = ResolveModel("pinned", o_);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->ref.revision, "abc");
  EXPECT_TRUE(m->gated);
  auto cat = LoadCatalogue(o_);
  ASSERT_TRUE(cat.ok());
  EXPECT_EQ(cat->size(), BuiltinCatalogue().size() + 2);
  std::ofstream(o_.catalogue_file) << R"({"bad": "not a repo id"})";
  m = ResolveModel("bad", o_);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("models.json"), std::string::npos);
  std::ofstream(o_.catalogue_file) << "{ not json";
  EXPECT_FALSE(LoadCatalogue(o_).ok());
}

TEST(HubOptionsTest, FromEnvironmentFollowsHuggingfaceHub) {
  std::map<std::string, std::string> env = {{"HOME", "/home/u"}};
  auto get = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  HubOptions o = HubOptions::FromEnvironment(get);
  EXPECT_EQ(o.cache_dir, "/home/u/.cache/huggingface/hub");
  EXPECT_EQ(o.endpoint, "https://huggingface.co");
  EXPECT_EQ(o.catalogue_file, "/home/u/.config/tessera/models.json");
  EXPECT_FALSE(o.offline);
  env["HF_HOME"] = "/data/hf";
  env["HF_ENDPOINT"] = "https://mirror.example/";
  env["HF_TOKEN"] = "hf_abc";
  env["HF_HUB_OFFLINE"] = "1";
  env["XDG_CONFIG_HOME"] = "/cfg";
  o = HubOptions::FromEnvironment(get);
  EXPECT_EQ(o.cache_dir, "/data/hf/hub");
  EXPECT_EQ(o.endpoint, "https://mirror.example");
  EXPECT_EQ(o.token, "hf_abc");
  EXPECT_TRUE(o.offline);
  EXPECT_EQ(o.catalogue_file, "/cfg/tessera/models.json");
  env["HF_HUB_CACHE"] = "/fast/hub";
  env["TESSERA_MODELS_FILE"] = "/x/models.json";
  o = HubOptions::FromEnvironment(get);
  EXPECT_EQ(o.cache_dir, "/fast/hub");
  EXPECT_EQ(o.catalogue_file, "/x/models.json");
  // The token file under HF_HOME.
  fs::path home = fs::temp_directory_path() / ("tessera-token-" + std::to_string(getpid()));
  fs::create_directories(home);
  std::ofstream(home / "token") << "hf_fromfile\n";
  env.erase("HF_TOKEN");
  env["HF_HOME"] = home.string();
  o = HubOptions::FromEnvironment(get);
  EXPECT_EQ(o.token, "hf_fromfile");
  fs::remove_all(home);
}

}  // namespace
}  // namespace tessera::hub
