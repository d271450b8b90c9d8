#include "tessera/hub/models.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fake_hub.h"
#include "tessera/hub/names.h"

namespace tessera::hub {
namespace {

namespace fs = std::filesystem;
using testing::FakeHub;
using testing::SafetensorsFile;

// Builds a cache by hand, as huggingface_hub lays it out.
class ModelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("tessera-models-" + std::to_string(getpid()));
    fs::remove_all(root_);
    o_.cache_dir = (root_ / "hub").string();
    o_.catalogue_file = (root_ / "none.json").string();
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path RepoDir(const std::string& repo) {
    return fs::path(o_.cache_dir) /
           ("models--" + repo.substr(0, repo.find('/')) + "--" + repo.substr(repo.find('/') + 1));
  }
  // Adds `path` with `content` to snapshot `commit` of `repo`.
  void Put(const std::string& repo, const std::string& commit, const std::string& path,
           const std::string& content) {
    fs::path dir = RepoDir(repo);
    std::string etag = FakeHub::GitBlobSha1(content);
    fs::create_directories(dir / "blobs");
    std::ofstream(dir / "blobs" / etag, std::ios::binary) << content;
    fs::path link = dir / "snapshots" / commit / path;
    fs::create_directories(link.parent_path());
    std::string up = "../../";
    for (char c : path) up += c == '/' ? "../" : "";
    fs::create_symlink(up + "blobs/" + etag, link);
  }
  void Ref(const std::string& repo, const std::string& ref, const std::string& commit) {
    fs::create_directories((RepoDir(repo) / "refs" / ref).parent_path());
    std::ofstream(RepoDir(repo) / "refs" / ref) << commit;
  }
  void MakeCache() {
    const std::string a(40, 'a'), b(40, 'b');
    Put("org/chat", a, "config.json",
        R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "torch_dtype":
            "bfloat16", "max_position_embeddings": 32768, "hidden_size": 64,
            "num_hidden_layers": 2, "vocab_size": 1000})");
    Put("org/chat", a, "model.safetensors", SafetensorsFile("w", {10, 20}));
    Put("org/chat", a, "tokenizer_config.json",
        R"({"chat_template": "line1\nline2\nline3\nline4"})");
    Put("org/chat", a, "README.md", "---\nlicense: other\nlicense_name: qwen-research\n---\n");
    Ref("org/chat", "main", a);
    // An older revision sharing the config blob.
    Put("org/chat", b, "config.json",
        R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "torch_dtype":
            "bfloat16", "max_position_embeddings": 32768, "hidden_size": 64,
            "num_hidden_layers": 2, "vocab_size": 1000})");
    Put("org/chat", b, "model.safetensors", SafetensorsFile("w", {5}));
    Ref("org/chat", "v0", b);
    Put("org/embed", a, "config.json", R"({"architectures": ["BertModel"], "dtype": "float32"})");
    Put("org/embed", a, "modules.json", "[]");
    Put("org/embed", a, "1_Pooling/config.json", "{}");
    Put("org/embed", a, "model.safetensors", SafetensorsFile("w", {3, 4}));
    Ref("org/embed", "main", a);
    Put("org/rerank", a, "config.json",
        R"({"architectures": ["XLMRobertaForSequenceClassification"], "id2label": {"0": "LABEL_0"}})");
    Ref("org/rerank", "main", a);
    fs::create_directories(fs::path(o_.cache_dir) / "datasets--org--data" / "snapshots" / a);
  }
  fs::path root_;
  HubOptions o_;
};

TEST_F(ModelsTest, ListsEverySnapshotWithItsMetadata) {
  MakeCache();
  auto list = ListModels(o_);
  ASSERT_TRUE(list.ok()) << list.status().message();
  ASSERT_EQ(list->size(), 4u);
  const ModelInfo& chat = (*list)[0];
  EXPECT_EQ(chat.name, "org/chat");
  EXPECT_EQ(chat.architecture, "Qwen2ForCausalLM");
  EXPECT_EQ(chat.modality, "text");
  EXPECT_EQ(chat.dtype, "bfloat16");
  EXPECT_EQ(chat.refs, std::vector<std::string>{"main"});
  EXPECT_GT(chat.size_bytes, 800);
  EXPECT_GT(chat.modified_unix, 0);
  EXPECT_EQ((*list)[1].name, "org/chat@v0");
  EXPECT_EQ((*list)[2].name, "org/embed");
  EXPECT_EQ((*list)[2].modality, "embedding");
  EXPECT_EQ((*list)[2].dtype, "float32");
  EXPECT_EQ((*list)[3].modality, "rerank");
  EXPECT_EQ((*list)[0].ToJson()["name"], "org/chat");
  o_.cache_dir = (root_ / "missing").string();
  list = ListModels(o_);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(ModelsTest, ShowSummarisesTheConfig) {
  MakeCache();
  auto d = ShowModel("org/chat", o_);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->parameters, 200);
  EXPECT_EQ(d->context_length, 32768);
  EXPECT_EQ(d->layers, 2);
  EXPECT_TRUE(d->chat_template);
  EXPECT_EQ(d->chat_template_head, "line1\nline2\nline3\n");
  EXPECT_EQ(d->license, "qwen-research");
  EXPECT_EQ(d->info.name, "org/chat");
  EXPECT_EQ(d->files.size(), 4u);
  EXPECT_EQ(d->ToJson()["parameters"], 200);
  d = ShowModel("org/chat@v0", o_);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->parameters, 5);
  d = ShowModel("org/embed", o_);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->parameters, 12);
  EXPECT_FALSE(d->chat_template);
  d = ShowModel("org/absent", o_);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("engine pull"), std::string::npos);
  // A plain folder works too.
  d = ShowModel(RepoDir("org/embed").string() + "/snapshots/" + std::string(40, 'a'), o_);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->info.modality, "embedding");
}

TEST_F(ModelsTest, RemovingARevisionKeepsSharedBlobs) {
  MakeCache();
  auto removed = RemoveModel("org/chat@v0", o_);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  fs::path dir = RepoDir("org/chat");
  EXPECT_FALSE(fs::exists(dir / "snapshots" / std::string(40, 'b')));
  EXPECT_FALSE(fs::exists(dir / "refs" / "v0"));
  EXPECT_TRUE(fs::exists(dir / "refs" / "main"));
  // Every link of the remaining snapshot still resolves; the old weights blob is gone.
  int blobs = 0;
  for (const auto& e : fs::directory_iterator(dir / "blobs")) blobs += e.is_regular_file();
  EXPECT_EQ(blobs, 4);
  for (const auto& e : fs::recursive_directory_iterator(dir / "snapshots"))
    if (e.is_symlink()) {
      EXPECT_TRUE(fs::exists(e.path())) << e.path();
    }
  auto d = ShowModel("org/chat", o_);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->parameters, 200);
}

TEST_F(ModelsTest, RemovingTheModelRemovesItsFolder) {
  MakeCache();
  fs::create_directories(fs::path(o_.cache_dir) / ".locks" / "models--org--chat");
  auto removed = RemoveModel("org/chat", o_);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_FALSE(fs::exists(RepoDir("org/chat")));
  EXPECT_FALSE(fs::exists(fs::path(o_.cache_dir) / ".locks" / "models--org--chat"));
  EXPECT_TRUE(fs::exists(RepoDir("org/embed")));
  EXPECT_EQ(RemoveModel("org/chat", o_).status().code(), StatusCode::kNotFound);
  // By snapshot path: the last snapshot takes the repo folder with it.
  removed = RemoveModel(RepoDir("org/embed").string() + "/snapshots/" + std::string(40, 'a'), o_);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_FALSE(fs::exists(RepoDir("org/embed")));
}

TEST_F(ModelsTest, RefusesFoldersOutsideTheCache) {
  MakeCache();
  fs::create_directories(root_ / "my-model");
  auto removed = RemoveModel((root_ / "my-model").string(), o_);
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(fs::exists(root_ / "my-model"));
  removed = RemoveModel(o_.cache_dir, o_);  // the cache itself is not a model
  ASSERT_FALSE(removed.ok());
  EXPECT_TRUE(fs::exists(RepoDir("org/chat")));
}

TEST(ModelsNaming, SnapshotDirsAndSizes) {
  EXPECT_EQ(RepoOfSnapshotDir("/c/hub/models--Qwen--Qwen3-0.6B/snapshots/" + std::string(40, 'a')),
            "Qwen/Qwen3-0.6B");
  EXPECT_EQ(
      RepoOfSnapshotDir("/c/hub/models--Qwen--Qwen3-0.6B/snapshots/" + std::string(40, 'a') + "/"),
      "Qwen/Qwen3-0.6B");
  EXPECT_EQ(RepoOfSnapshotDir("/models/qwen"), "");
  EXPECT_EQ(HumanBytes(999), "999 B");
  EXPECT_EQ(HumanBytes(1500000), "1.5 MB");
  EXPECT_EQ(HumanBytes(988000000), "988 MB");
  EXPECT_EQ(HumanBytes(15400000000), "15 GB");
}

}  // namespace
}  // namespace tessera::hub
