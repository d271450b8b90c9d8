// fake_hub_server: serves the stand-in Hub (fake_hub.h) for shell tests. Prints its endpoint on
// stdout, then serves until stdin reaches EOF or the process is signalled.
//   fake_hub_server [--drop-first BYTES] [--repo ORG/NAME=DIR]...
// --repo serves the files of a model folder (e.g. a test fixture) as a repository.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "fake_hub.h"

int main(int argc, char** argv) {
  using namespace tessera::hub::testing;
  FakeHub hub;
  hub.AddRepo(TinyModelRepo("tessera-test/tiny-chat"));
  FakeRepo embed = TinyModelRepo("tessera-test/tiny-embed", 4096);
  embed.files.push_back({"modules.json", R"([{"idx": 0, "path": "", "type": "x"}])", false});
  embed.files.push_back({"1_Pooling/config.json", R"({"pooling_mode_mean_tokens": true})", false});
  hub.AddRepo(embed);
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--repo") == 0) {
      const std::string spec = argv[i + 1];
      const size_t eq = spec.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "--repo wants ORG/NAME=DIR\n");
        return 2;
      }
      FakeRepo repo;
      repo.repo = spec.substr(0, eq);
      repo.commit = std::string(40, 'c');
      const std::filesystem::path dir = spec.substr(eq + 1);
      for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file()) continue;
        std::ifstream in(e.path(), std::ios::binary);
        std::stringstream bytes;
        bytes << in.rdbuf();
        repo.files.push_back({std::filesystem::relative(e.path(), dir).generic_string(),
                              bytes.str(), e.path().extension() == ".safetensors"});
      }
      hub.AddRepo(repo);
    }
    if (std::strcmp(argv[i], "--drop-first") == 0) {
      FakeFault f;
      f.match = "path=model-00001";  // the CDN leg of the download
      f.drop_after_bytes = std::atol(argv[i + 1]);
      f.times = 1;
      hub.AddFault(f);
    }
  }
  std::printf("%s\n", hub.endpoint().c_str());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  return 0;
}
