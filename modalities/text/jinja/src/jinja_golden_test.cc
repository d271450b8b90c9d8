// Golden test: every published chat template in tests/fixtures/chat_templates x every
// conversation must render byte for byte as Python's jinja2 did (expected.json, produced by
// render_reference.py). Templates that raise_exception() must fail with the same message; other
// jinja2 errors must be errors here too.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tessera/text/chat_template.h"

namespace tessera::text {
namespace {

using Json = nlohmann::ordered_json;

std::string FixtureDir() {
  const char* dir = std::getenv("TESSERA_CHAT_TEMPLATE_FIXTURES");
  return dir ? dir : TESSERA_CHAT_TEMPLATE_FIXTURES_DIR;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json LoadJson(const std::string& name) {
  std::string text = ReadAll(FixtureDir() + "/" + name);
  EXPECT_FALSE(text.empty()) << "missing fixture " << name << " in " << FixtureDir();
  return Json::parse(text);
}

TEST(JinjaGolden, MatchesPythonJinja2) {
  const Json templates = LoadJson("templates.json")["templates"];
  const Json conversations = LoadJson("conversations.json")["conversations"];
  const Json expected = LoadJson("expected.json");
  const int64_t now = expected["fixed_now_unix_seconds"].get<int64_t>();

  std::map<std::pair<std::string, std::string>, const Json*> want;
  for (const Json& c : expected["cases"]) {
    want[{c["template"].get<std::string>(), c["conversation"].get<std::string>()}] = &c;
  }
  int checked = 0;
  for (const Json& t : templates) {
    const std::string name = t["name"].get<std::string>();
    auto chat = ChatTemplate::FromSource(ReadAll(FixtureDir() + "/" + t["file"].get<std::string>()),
                                         t["bos"].get<std::string>(), t["eos"].get<std::string>());
    ASSERT_TRUE(chat.ok()) << name << ": " << chat.status().ToString();
    for (const Json& c : conversations) {
      const std::string conv = c["name"].get<std::string>();
      SCOPED_TRACE(name + " x " + conv);
      auto it = want.find({name, conv});
      ASSERT_NE(it, want.end()) << "expected.json lacks this case; rerun render_reference.py";
      const Json& exp = *it->second;
      ChatTemplateInputs in;
      in.messages = c["messages"];
      in.tools = c.contains("tools") ? c["tools"] : Json();
      in.add_generation_prompt = c.value("add_generation_prompt", true);
      in.extra = c.contains("extra") ? c["extra"] : Json::object();
      in.fixed_now_unix_seconds = now;
      auto out = chat->Apply(in);
      if (exp.contains("output")) {
        EXPECT_TRUE(out.ok()) << out.status().ToString();
        if (out.ok()) {
          EXPECT_EQ(*out, exp["output"].get<std::string>());
        }
      } else {
        EXPECT_FALSE(out.ok()) << "jinja2 failed with: " << exp["error"] << "\nwe rendered:\n"
                               << (out.ok() ? *out : "");
        if (!out.ok() && exp["error_kind"] == "raise_exception") {
          EXPECT_EQ(out.status().message(), exp["error"].get<std::string>());
        }
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(expected["cases"].size()));
}

}  // namespace
}  // namespace tessera::text
