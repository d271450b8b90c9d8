// The devices a test process runs models on, opened once: plugins from the paths in
// TESSERA_TEST_PLUGINS (':'-separated; CMake sets it to the built CPU plugin), the backend named
// by TESSERA_TEST_BACKEND (default "cpu") first and the CPU after it as the fallback, so the same
// golden and server suites run against any backend.
#ifndef TESSERA_TESTING_TEST_RUNTIME_H_
#define TESSERA_TESTING_TEST_RUNTIME_H_

#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tessera/core/device.h"
#include "tessera/core/plugin_loader.h"

namespace tessera::testing {

class TestRuntime {
 public:
  static TestRuntime& Get() {
    static TestRuntime r;
    return r;
  }
  std::vector<Device*> devices() {
    std::vector<Device*> d;
    for (auto& dev : devices_) d.push_back(dev.get());
    return d;
  }

 private:
  TestRuntime() {
    LoaderOptions o;
    const char* paths = std::getenv("TESSERA_TEST_PLUGINS");
    TSR_CHECK(paths != nullptr && *paths != '\0');
    std::stringstream ss(paths);
    for (std::string p; std::getline(ss, p, ':');)
      if (!p.empty()) o.explicit_paths.push_back(p);
    o.plugin_options["cpu"] = {{"threads", "2"}};
    registry_ = PluginRegistry::Discover(o);
    const char* backend = std::getenv("TESSERA_TEST_BACKEND");
    const std::string want = backend && *backend ? backend : "cpu";
    Open(want);
    if (want != "cpu") Open("cpu");
  }
  void Open(const std::string& id) {
    Plugin* plugin = registry_->Find(id);
    TSR_CHECK(plugin != nullptr);
    devices_.push_back(std::move(Device::Open(plugin, 0)).value());
  }
  std::unique_ptr<PluginRegistry> registry_;
  std::vector<std::unique_ptr<Device>> devices_;
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTING_TEST_RUNTIME_H_
