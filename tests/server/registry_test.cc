// The server's model registry on two real checkpoints and the CPU backend: models named at start
// stay, others load on first request through the resolver, idle ones unload after their
// keep-alive, and a load that does not fit the memory budget evicts the least recently used idle
// model, or fails clearly when every model is busy.
#include "registry.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "tessera/testing/test_runtime.h"

namespace tessera::server {
namespace {

std::string DefaultDir() {
  return std::getenv("TESSERA_DEFAULT_MODEL");
}
std::string FixtureDir() {
  return std::getenv("TESSERA_FIXTURE_MODEL");
}

RegistryOptions Options() {
  RegistryOptions o;
  o.devices = testing::TestRuntime::Get().devices();
  o.memory_budget = 1LL << 30;
  o.kv_budget_bytes = 1 << 20;
  o.resolve = [](const std::string& name) -> StatusOr<std::string> {
    if (name == "fixture") return FixtureDir();
    if (name == "tiny") return DefaultDir();
    return NotFound("no model '" + name + "' here; pull it first");
  };
  return o;
}

// Waits (bounded) until `pred` holds; the reaper runs once a second.
template <typename P>
bool WaitFor(P pred) {
  for (int i = 0; i < 100 && !pred(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return pred();
}

TEST(RegistryTest, PinnedModelsAndLoadOnRequest) {
  ModelRegistry reg(Options());
  ASSERT_TRUE(reg.LoadPinned({DefaultDir()}, {"default"}).ok());
  auto only = reg.Acquire("");  // one model: requests may leave the name out
  ASSERT_TRUE(only.ok());
  EXPECT_EQ((*only)->name, "default");
  EXPECT_TRUE((*only)->pinned);
  EXPECT_FALSE(reg.ExpiresAt(**only).has_value());
  EXPECT_TRUE(reg.Acquire("default:latest").ok());

  auto missing = reg.Acquire("nobody/nothing");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("pull"), std::string::npos);
  // Requests name models, never folders.
  EXPECT_EQ(reg.Acquire("/etc").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg.Acquire("../x").status().code(), StatusCode::kNotFound);

  auto fixture = reg.Acquire("fixture");
  ASSERT_TRUE(fixture.ok()) << fixture.status().message();
  EXPECT_EQ((*fixture)->name, "fixture");
  EXPECT_GT((*fixture)->memory_bytes, (*fixture)->size_bytes);
  EXPECT_EQ(reg.Loaded().size(), 2u);
  EXPECT_EQ(reg.Acquire("").status().code(), StatusCode::kInvalidArgument);  // which one?
  EXPECT_EQ(reg.memory_used(), (*only)->memory_bytes + (*fixture)->memory_bytes);
}

TEST(RegistryTest, IdleModelUnloadsAfterKeepAlive) {
  ModelRegistry reg(Options());
  {
    auto m = reg.Acquire("fixture", Seconds(0));
    ASSERT_TRUE(m.ok());
    // Held: not idle, so it stays however short its keep-alive.
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    EXPECT_EQ(reg.Loaded().size(), 1u);
    EXPECT_EQ(reg.Unload("fixture").code(), StatusCode::kFailedPrecondition);
  }
  EXPECT_TRUE(WaitFor([&] { return reg.Loaded().empty(); }));
  EXPECT_EQ(reg.memory_used(), 0);
  EXPECT_EQ(reg.Unload("fixture").code(), StatusCode::kNotFound);
}

TEST(RegistryTest, BudgetEvictsLeastRecentlyUsedIdleModel) {
  RegistryOptions o = Options();
  {  // a budget that holds one of the two models, not both
    ModelRegistry probe(Options());
    auto a = probe.Acquire("fixture");
    auto b = probe.Acquire("tiny");
    ASSERT_TRUE(a.ok() && b.ok());
    // A load needs its weights plus the KV budget free.
    o.memory_budget = std::max((*a)->size_bytes, (*b)->size_bytes) + o.kv_budget_bytes + 1;
  }
  ModelRegistry reg(o);
  {
    auto a = reg.Acquire("fixture");
    ASSERT_TRUE(a.ok());
    // The first is in use: the second can not make room.
    auto b = reg.Acquire("tiny");
    EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(b.status().message().find("fixture"), std::string::npos) << b.status().message();
  }
  auto b = reg.Acquire("tiny");  // now the idle one is evicted
  ASSERT_TRUE(b.ok()) << b.status().message();
  ASSERT_EQ(reg.Loaded().size(), 1u);
  EXPECT_EQ(reg.Loaded()[0]->name, "tiny");
  EXPECT_LE(reg.memory_used(), reg.memory_budget());
}

}  // namespace
}  // namespace tessera::server
