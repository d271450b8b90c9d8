// Unit tests: language features (checked against jinja2's own output, see language_cases.py),
// limits on hostile templates, syntax errors, model-folder loading and thread safety.
#include "tessera/text/jinja.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tessera/text/chat_template.h"

namespace tessera::text {
namespace {

using Json = nlohmann::ordered_json;

std::string FixtureDir() {
  const char* dir = std::getenv("TESSERA_CHAT_TEMPLATE_FIXTURES");
  return dir ? dir : TESSERA_CHAT_TEMPLATE_FIXTURES_DIR;
}

StatusOr<std::string> Render(const std::string& tpl, const Json& ctx = Json::object(),
                             const TemplateLimits& limits = {}) {
  auto t = JinjaTemplate::Parse(tpl);
  if (!t.ok()) return t.status();
  return t->Render(ctx, limits);
}

TEST(Jinja, LanguageCasesMatchJinja2) {
  std::ifstream in(FixtureDir() + "/expected.json");
  ASSERT_TRUE(in) << "missing expected.json in " << FixtureDir();
  Json expected = Json::parse(in);
  RenderOptions options;
  options.fixed_now_unix_seconds = expected["fixed_now_unix_seconds"].get<int64_t>();
  int n = 0;
  for (const Json& c : expected["language_cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>() + ": " + c["template"].get<std::string>());
    auto t = JinjaTemplate::Parse(c["template"].get<std::string>());
    if (c.value("error_kind", "") == "syntax") {
      EXPECT_FALSE(t.ok());
      ++n;
      continue;
    }
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    auto out = t->Render(c["context"], TemplateLimits{}, options);
    if (c.contains("output")) {
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_EQ(*out, c["output"].get<std::string>());
    } else {
      EXPECT_FALSE(out.ok()) << "jinja2: " << c["error"] << "\nours: " << (out.ok() ? *out : "");
      if (!out.ok() && c["error_kind"] == "raise_exception") {
        EXPECT_EQ(out.status().message(), c["error"].get<std::string>());
      }
    }
    ++n;
  }
  EXPECT_GT(n, 50);
}

TEST(Jinja, SyntaxErrorsCarryLineAndColumn) {
  auto t = JinjaTemplate::Parse("line one\n{{ 1 + }}");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("2:8:"), std::string::npos) << t.status().message();

  auto unknown = JinjaTemplate::Parse("{% if x %}\n  {% frobnicate %}{% endif %}");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("2:6: Encountered unknown tag 'frobnicate'"),
            std::string::npos)
      << unknown.status().message();

  auto include = JinjaTemplate::Parse("{% include 'other.jinja' %}");
  ASSERT_FALSE(include.ok());
  EXPECT_NE(include.status().message().find("not supported"), std::string::npos);
}

TEST(Jinja, GenerationBlocksRenderTheirBody) {
  // transformers registers {% generation %} (assistant-token masks); it renders as plain text.
  auto out = Render("{% for m in ms %}{% generation %}{{ m }}{% endgeneration %};{% endfor %}",
                    Json{{"ms", {"a", "b"}}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "a;b;");
}

TEST(Jinja, KeyOrderIsPreserved) {
  Json ctx = Json::parse(R"({"d": {"zebra": 1, "apple": 2, "mango": {"y": 1, "b": 2}}})");
  auto out = Render("{{ d|tojson }} {% for k in d %}{{ k }} {% endfor %}", ctx);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, R"({"zebra": 1, "apple": 2, "mango": {"y": 1, "b": 2}} zebra apple mango )");
  // A plain nlohmann::json converts implicitly (its keys come sorted).
  nlohmann::json plain = {{"x", 1}};
  auto t = JinjaTemplate::Parse("{{ x }}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->Render(plain), "1");
}

TEST(JinjaLimits, LoopIterationsAreBounded) {
  const std::string tpl =
      "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}";
  auto out = Render(tpl);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("max_loop_iterations"), std::string::npos);

  TemplateLimits small;
  small.max_loop_iterations = 10;
  EXPECT_TRUE(Render("{% for i in range(5) %}{{ i }}{% endfor %}", Json::object(), small).ok());
  auto over = Render("{% for i in range(11) %}{{ i }}{% endfor %}", Json::object(), small);
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
}

TEST(JinjaLimits, MacroRecursionIsBounded) {
  auto out = Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("max_recursion_depth"), std::string::npos);
  // The Hermes-3 tool template recurses forever on a union type containing "null": an error,
  // as in Python (RecursionError), not a crash.
  TemplateLimits limits;
  limits.max_recursion_depth = 20;
  auto shallow =
      Render("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}x{% endmacro %}{{ f(25) }}",
             Json::object(), limits);
  EXPECT_EQ(shallow.status().code(), StatusCode::kResourceExhausted);
}

TEST(JinjaValues, NamespaceHoldingItselfPrintsAsPython) {
  // jinja_fuzz found the repr of a namespace that holds itself recursing until the stack ran out.
  // Python prints the inner one as "{...}" (dict repr's recursion guard): so do we.
  auto self = Render(
      "{% set ns = namespace(total=0, items=[]) %}{% set ns.total = ns %}"
      "{% set ns.items = [ns, 1] %}{{ ns }}");
  ASSERT_TRUE(self.ok()) << self.status().ToString();
  EXPECT_EQ(*self, "<Namespace {'total': <Namespace {...}>, 'items': [<Namespace {...}>, 1]}>");
  auto pair = Render(
      "{% set a = namespace(x=1) %}{% set b = namespace(a=a) %}{% set a.x = b %}{{ a }}|{{ b }}");
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_EQ(*pair,
            "<Namespace {'x': <Namespace {'a': <Namespace {...}>}>}>|"
            "<Namespace {'a': <Namespace {'x': <Namespace {...}>}>}>");
}

TEST(JinjaLimits, ReprOfDeepSharingIsBounded) {
  // 60 doublings of a shared list: cheap to build, 2^60 items to print.
  TemplateLimits limits;
  limits.max_output_bytes = 1 << 20;
  for (const char* tail : {"{{ ns.x }}", "{{ ns.x|string|length }}", "{{ [ns]|length }}{{ ns }}"}) {
    auto r = Render(std::string("{% set ns = namespace(x=1) %}{% for i in range(60) %}"
                                "{% set ns.x = [ns.x, ns.x] %}{% endfor %}") +
                        tail,
                    Json::object(), limits);
    ASSERT_FALSE(r.ok()) << tail;
    EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << tail;
  }
}

TEST(JinjaLimits, OutputSizeIsBounded) {
  TemplateLimits limits;
  limits.max_output_bytes = 1 << 20;
  // Doubling a string 40 times would need a terabyte.
  auto doubling = Render(
      "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
      "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
      Json::object(), limits);
  ASSERT_FALSE(doubling.ok());
  EXPECT_EQ(doubling.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(doubling.status().message().find("max_output_bytes"), std::string::npos);

  auto repeat = Render("{{ 'x' * 100000000 }}", Json::object(), limits);
  EXPECT_EQ(repeat.status().code(), StatusCode::kResourceExhausted);

  auto text =
      Render("{% for i in range(100000) %}0123456789abcdef{% endfor %}", Json::object(), limits);
  EXPECT_EQ(text.status().code(), StatusCode::kResourceExhausted);
}

TEST(JinjaLimits, DeepNestingIsASyntaxErrorNotACrash) {
  std::string deep(100000, '(');
  auto t = JinjaTemplate::Parse("{{ " + deep + "1" + std::string(100000, ')') + " }}");
  EXPECT_FALSE(t.ok());
  std::string blocks;
  for (int i = 0; i < 5000; ++i) blocks += "{% if true %}";
  EXPECT_FALSE(JinjaTemplate::Parse(blocks).ok());
  EXPECT_FALSE(
      JinjaTemplate::Parse(std::string(10000, '-') + "{{ " + std::string(10000, '-') + "1 }}")
          .ok());
}

TEST(Jinja, RenderIsThreadSafe) {
  auto t = JinjaTemplate::Parse(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
      "{{ m.role }}:{{ m.content }};{% endfor %}{{ ns.n }}");
  ASSERT_TRUE(t.ok());
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      Json ctx;
      ctx["messages"] = Json::array();
      for (int k = 0; k <= i; ++k)
        ctx["messages"].push_back({{"role", "user"}, {"content", std::to_string(k)}});
      for (int rep = 0; rep < 50; ++rep) results[i] = *t->Render(ctx);
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(results[i].back(), static_cast<char>('1' + i));
}

class ModelDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tessera_jinja_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  std::filesystem::path dir_;
};

TEST_F(ModelDirTest, TokenizerConfigStringTemplate) {
  Json config = {{"bos_token", {{"content", "<s>"}, {"lstrip", false}}},
                 {"eos_token", "</s>"},
                 {"chat_template",
                  "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}"
                  "{% if add_generation_prompt %}>{% endif %}{{ eos_token }}"}};
  Write("tokenizer_config.json", config.dump());
  auto chat = ChatTemplate::FromModelDir(dir_.string());
  ASSERT_TRUE(chat.ok()) << chat.status().ToString();
  EXPECT_EQ(chat->bos_token(), "<s>");
  ChatTemplateInputs in;
  in.messages = Json::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(*chat->Apply(in), "<s>[hi]></s>");
  in.add_generation_prompt = false;
  EXPECT_EQ(*chat->Apply(in), "<s>[hi]</s>");
}

TEST_F(ModelDirTest, NamedTemplatesPickToolUseWhenToolsAreGiven) {
  Json config = {{"eos_token", "</s>"},
                 {"chat_template",
                  Json::array({{{"name", "default"}, {"template", "plain"}},
                               {{"name", "tool_use"}, {"template", "tools={{ tools|length }}"}}})}};
  Write("tokenizer_config.json", config.dump());
  auto chat = ChatTemplate::FromModelDir(dir_.string());
  ASSERT_TRUE(chat.ok()) << chat.status().ToString();
  ChatTemplateInputs in;
  EXPECT_EQ(*chat->Apply(in), "plain");
  in.tools = Json::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  EXPECT_EQ(*chat->Apply(in), "tools=1");
}

TEST_F(ModelDirTest, ChatTemplateJinjaWins) {
  Write("tokenizer_config.json", R"({"bos_token": "<b>", "chat_template": "from config"})");
  Write("chat_template.jinja", "from file {{ bos_token }}{{ extra_var }}\n");
  auto chat = ChatTemplate::FromModelDir(dir_.string());
  ASSERT_TRUE(chat.ok()) << chat.status().ToString();
  ChatTemplateInputs in;
  in.extra = {{"extra_var", "!"}};
  EXPECT_EQ(*chat->Apply(in), "from file <b>!");  // jinja2 drops the single trailing newline
}

TEST_F(ModelDirTest, MissingTemplateIsNotFound) {
  Write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  auto chat = ChatTemplate::FromModelDir(dir_.string());
  EXPECT_EQ(chat.status().code(), StatusCode::kNotFound);
}

TEST(ChatTemplate, RaiseExceptionMessageIsTheStatusMessage) {
  auto chat = ChatTemplate::FromSource(
      "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be user') }}{% "
      "endif %}",
      "", "");
  ASSERT_TRUE(chat.ok());
  ChatTemplateInputs in;
  in.messages = Json::parse(R"([{"role": "assistant", "content": "x"}])");
  auto out = chat->Apply(in);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "first message must be user");
}

}  // namespace
}  // namespace tessera::text
