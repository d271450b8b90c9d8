#include "cache_layout.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "tessera/hub/pull.h"

namespace tessera::hub::internal {
namespace {

TEST(CacheLayout, RepoFolderNamesRoundTrip) {
  EXPECT_EQ(RepoFolderName("Qwen/Qwen2.5-0.5B-Instruct"), "models--Qwen--Qwen2.5-0.5B-Instruct");
  EXPECT_EQ(RepoFromFolderName("models--Qwen--Qwen2.5-0.5B-Instruct"),
            "Qwen/Qwen2.5-0.5B-Instruct");
  EXPECT_EQ(RepoFromFolderName("datasets--a--b"), "");
  EXPECT_EQ(RepoFromFolderName(".locks"), "");
}

TEST(CacheLayout, UnsafeRepoPathsAreRejected) {
  for (const std::string p :
       {"config.json", "1_Pooling/config.json", "a/b/c.safetensors", "x..y.json", "...json"})
    EXPECT_TRUE(ValidateRepoPath(p).ok()) << p;
  for (const std::string& p : std::vector<std::string>{
           "", "/etc/passwd", "../x", "a/../../x", "a/./b", "./a", "a//b", "a/", "a\\b",
           "..\\..\\x", std::string("a\nb"), std::string("a\x7f"), std::string(2000, 'a'), "C:x",
           std::string("a\0b", 3)})
    EXPECT_FALSE(ValidateRepoPath(p).ok()) << p;
}

TEST(CacheLayout, UnsafeBlobNamesAreRejected) {
  EXPECT_TRUE(ValidateBlobName(std::string(64, 'a')).ok());
  for (const std::string& e :
       std::vector<std::string>{"", "../x", "a/b", ".hidden", "a b", std::string(200, 'a')})
    EXPECT_FALSE(ValidateBlobName(e).ok()) << e;
}

TEST(CacheLayout, LinkTargetsClimbOneLevelPerFolder) {
  EXPECT_EQ(BlobLinkTarget("config.json", "abc"), "../../blobs/abc");
  EXPECT_EQ(BlobLinkTarget("1_Pooling/config.json", "abc"), "../../../blobs/abc");
  EXPECT_EQ(BlobLinkTarget("a/b/c", "abc"), "../../../../blobs/abc");
}

TEST(CacheLayout, IsInsideSeesThroughSymlinks) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("tessera-inside-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "cache" / "a");
  fs::create_directory_symlink("/tmp", root / "cache" / "escape");
  EXPECT_TRUE(IsInside(root / "cache", root / "cache" / "a" / "new-file"));
  EXPECT_TRUE(IsInside(root / "cache", root / "cache"));
  EXPECT_FALSE(IsInside(root / "cache", root / "cache" / ".." / "x"));
  EXPECT_FALSE(IsInside(root / "cache", root / "cache" / "escape" / "x"));
  EXPECT_FALSE(IsInside(root / "cache", root / "cachex"));
  fs::remove_all(root);
}

TEST(CacheLayout, AtomicWritesAndRefs) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("tessera-atomic-" + std::to_string(getpid()));
  fs::remove_all(root);
  const std::string commit(40, 'a');
  ASSERT_TRUE(WriteFileAtomic(root / "refs" / "main", commit).ok());
  EXPECT_EQ(ReadRef(root, "main"), commit);
  ASSERT_TRUE(WriteFileAtomic(root / "refs" / "main", "not a commit").ok());
  EXPECT_EQ(ReadRef(root, "main"), "");
  EXPECT_EQ(ReadRef(root, "../refs/main"), "");
  ASSERT_TRUE(SymlinkAtomic("../x", root / "s" / "link").ok());
  ASSERT_TRUE(SymlinkAtomic("../y", root / "s" / "link").ok());  // replaces
  EXPECT_EQ(fs::read_symlink(root / "s" / "link"), "../y");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(root / "s")) entries += e.path().empty() ? 0 : 1;
  EXPECT_EQ(entries, 1);  // no temporary left behind
  fs::remove_all(root);
}

TEST(CacheLayout, InferenceFileFilter) {
  for (const char* p : {"config.json",
                        "model.safetensors",
                        "model-00001-of-00004.safetensors",
                        "model.safetensors.index.json",
                        "tokenizer.json",
                        "tokenizer_config.json",
                        "chat_template.jinja",
                        "generation_config.json",
                        "special_tokens_map.json",
                        "preprocessor_config.json",
                        "modules.json",
                        "sentence_bert_config.json",
                        "config_sentence_transformers.json",
                        "1_Pooling/config.json",
                        "2_Dense/model.safetensors",
                        "vocab.txt",
                        "merges.txt",
                        "README.md",
                        "LICENSE",
                        "additional_chat_templates/tool.jinja"})
    EXPECT_TRUE(IsInferenceFile(p)) << p;
  for (const char* p :
       {"pytorch_model.bin", "model.onnx", "onnx/model.onnx", "tf_model.h5",
        "original/consolidated.00.pth", "original/params.json", "flax_model.msgpack",
        ".gitattributes", "openvino/config.json", "1_Pooling/sub/config.json", "model.gguf"})
    EXPECT_FALSE(IsInferenceFile(p)) << p;
}

}  // namespace
}  // namespace tessera::hub::internal
