// `engine pull | list | show | rm | ps`: model management on the Hugging Face Hub cache
// (docs/models.md), and ResolveModelDir, which turns any MODEL argument of run/serve/bench into
// a folder, pulling it first when needed.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "tessera/hub/models.h"
#include "tessera/hub/names.h"
#include "tessera/hub/pull.h"

namespace tessera::cli {
namespace {

using hub::HumanBytes;
using hub::PullProgress;

hub::HubOptions HubOptionsFromEnv() {
  return hub::HubOptions::FromEnvironment([](const char* n) { return std::getenv(n); });
}

// Draws pull progress on stderr: on a terminal, a bar per active file and one overall, redrawn
// in place; otherwise one plain line per file started, retried and finished.
class ProgressView {
 public:
  ProgressView() : tty_(isatty(STDERR_FILENO) != 0), start_(Clock::now()) {}

  void operator()(const PullProgress& p) {
    using E = PullProgress::Event;
    if (!tty_) return Plain(p);
    if (p.event == E::kFileStart) active_[p.file] = {p.file_done, p.file_total};
    if (p.event == E::kBytes && active_.count(p.file)) active_[p.file].done = p.file_done;
    if (p.event == E::kFileDone && active_.erase(p.file)) {
      Erase();
      std::fprintf(stderr, "%s\n", Bar(p.file, p.file_total, p.file_total).c_str());
    }
    if (p.event == E::kRetry) {
      Erase();
      std::fprintf(stderr, "retrying %s: %s\n", p.file.c_str(), p.message.c_str());
    }
    last_ = p;
    auto now = Clock::now();
    if (p.event == E::kBytes && now - drawn_at_ < std::chrono::milliseconds(100)) return;
    drawn_at_ = now;
    Draw();
  }

  // Leaves the final state on screen.
  void Finish() {
    if (tty_ && last_.files_total > 0) Draw();
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Line {
    int64_t done = 0, total = -1;
  };

  void Plain(const PullProgress& p) {
    switch (p.event) {
      case PullProgress::Event::kPlan:
        std::fprintf(stderr, "pulling %d files, %s to download\n", p.files_total,
                     HumanBytes(p.total - p.done).c_str());
        break;
      case PullProgress::Event::kFileStart:
        started_[p.file] = true;
        std::fprintf(stderr, "pulling %s (%s)%s\n", p.file.c_str(),
                     HumanBytes(std::max<int64_t>(p.file_total, 0)).c_str(),
                     p.file_done > 0 ? (" from byte " + std::to_string(p.file_done)).c_str() : "");
        break;
      case PullProgress::Event::kFileDone:
        if (started_.count(p.file))
          std::fprintf(stderr, "done %s [%d/%d files, %s of %s]\n", p.file.c_str(), p.files_done,
                       p.files_total, HumanBytes(p.done).c_str(), HumanBytes(p.total).c_str());
        break;
      case PullProgress::Event::kRetry:
        std::fprintf(stderr, "retrying %s: %s\n", p.file.c_str(), p.message.c_str());
        break;
      default: break;
    }
  }

  std::string Bar(const std::string& name, int64_t done, int64_t total) const {
    const int width = 24;
    double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0;
    frac = std::min(1.0, std::max(0.0, frac));
    std::string bar(static_cast<size_t>(frac * width), '#');
    bar.resize(width, '.');
    std::string shown = name.size() > 36 ? "..." + name.substr(name.size() - 33) : name;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-36s [%s] %3d%% %9s / %-9s", shown.c_str(), bar.c_str(),
                  static_cast<int>(frac * 100), HumanBytes(done).c_str(),
                  HumanBytes(std::max<int64_t>(total, 0)).c_str());
    return buf;
  }

  void Erase() {
    for (int i = 0; i < lines_; ++i) std::fprintf(stderr, "\x1b[1A\x1b[2K");
    lines_ = 0;
  }

  void Draw() {
    Erase();
    for (const auto& [name, l] : active_)
      std::fprintf(stderr, "%s\n", Bar(name, l.done, l.total).c_str());
    double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    std::string total = Bar("total (" + std::to_string(last_.files_done) + "/" +
                                std::to_string(last_.files_total) + " files)",
                            last_.done, last_.total);
    std::fprintf(
        stderr, "%s %s/s\n", total.c_str(),
        HumanBytes(secs > 0.2 ? static_cast<int64_t>((last_.done - first_done_) / secs) : 0)
            .c_str());
    if (last_.event == PullProgress::Event::kPlan) first_done_ = last_.done;
    lines_ = static_cast<int>(active_.size()) + 1;
  }

  bool tty_;
  Clock::time_point start_, drawn_at_;
  std::map<std::string, Line> active_;
  std::map<std::string, bool> started_;
  PullProgress last_;
  int64_t first_done_ = 0;  // bytes already cached when the pull began (not counted in speed)
  int lines_ = 0;
};

// Pulls `m` with progress on stderr. `ask`: confirm first (on a terminal) -- `engine run` on a
// missing model.
StatusOr<hub::PullResult> PullWithProgress(const hub::ResolvedModel& m, const hub::HubOptions& o,
                                           bool ask) {
  const std::string name = m.ref.ToString();
  if (m.gated && o.token.empty())
    std::fprintf(stderr,
                 "note: %s is gated: accept its licence on %s/%s and set HF_TOKEN to a token of "
                 "that account\n",
                 name.c_str(), o.endpoint.c_str(), m.ref.repo.c_str());
  ProgressView view;
  hub::PullOptions po;
  po.progress = [&view](const PullProgress& p) { view(p); };
  if (ask) {
    po.confirm = [&](const hub::PullPlan& plan) {
      const std::string size = HumanBytes(plan.missing_bytes);
      if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO)) {
        std::fprintf(stderr,
                     "%s is not in the cache: pulling it (%s) without asking, as stdin is not a "
                     "terminal\n",
                     name.c_str(), size.c_str());
        return true;
      }
      std::fprintf(stderr, "pull %s (%s)? [Y/n] ", name.c_str(), size.c_str());
      std::string answer;
      if (!std::getline(std::cin, answer)) return false;
      return answer.empty() || answer == "y" || answer == "Y" || answer == "yes";
    };
  }
  auto r = hub::Pull(m.ref, o, po);
  view.Finish();
  return r;
}

int Pull(const std::vector<std::string>& names) {
  hub::HubOptions o = HubOptionsFromEnv();
  for (const std::string& name : names) {
    auto m = hub::ResolveModel(name, o);
    if (!m.ok()) return Fail(m.status());
    if (m->kind == hub::ResolvedModel::Kind::kFolder)
      return Fail(InvalidArgument("'" + name + "' is a local folder: there is nothing to pull"));
    auto r = PullWithProgress(*m, o, /*ask=*/false);
    if (!r.ok()) return Fail(r.status());
    if (r->from_cache_only)
      std::fprintf(stderr, "%s: using the cached snapshot\n", m->ref.ToString().c_str());
    else
      std::fprintf(stderr, "%s: %s (%s downloaded)\n", m->ref.ToString().c_str(),
                   r->downloaded_bytes ? "pulled" : "up to date",
                   HumanBytes(r->downloaded_bytes).c_str());
    std::printf("%s\n", r->snapshot_dir.c_str());
  }
  return 0;
}

// 494M, 1.5B: parameter counts as model cards write them.
std::string Count(int64_t n) {
  const char* units[] = {"", "K", "M", "B", "T"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10 && u > 0 ? "%.1f%s" : "%.0f%s", v, units[u]);
  return buf;
}

std::string Ago(int64_t unix_time) {
  int64_t s = static_cast<int64_t>(std::time(nullptr)) - unix_time;
  if (s < 60) return "just now";
  if (s < 3600) return std::to_string(s / 60) + " minutes ago";
  if (s < 86400) return std::to_string(s / 3600) + " hours ago";
  return std::to_string(s / 86400) + " days ago";
}

// Aliases naming each repo, for the list's first column.
std::map<std::string, std::string> AliasesByRepo(const hub::HubOptions& o) {
  std::map<std::string, std::string> out;
  auto cat = hub::LoadCatalogue(o);
  if (!cat.ok()) return out;
  for (const auto& e : *cat) out.emplace(e.target, e.alias);
  return out;
}

int List(bool json, bool catalogue) {
  hub::HubOptions o = HubOptionsFromEnv();
  if (catalogue) {
    auto cat = hub::LoadCatalogue(o);
    if (!cat.ok()) return Fail(cat.status());
    nlohmann::json j = nlohmann::json::array();
    if (!json) std::printf("%-22s %-42s %-7s %s\n", "ALIAS", "MODEL", "CACHED", "DESCRIPTION");
    for (const auto& e : *cat) {
      auto ref = hub::ParseRepoRef(e.target);
      bool cached = ref.ok() && !hub::FindSnapshot(*ref, o).empty();
      if (json)
        j.push_back({{"alias", e.alias},
                     {"model", e.target},
                     {"cached", cached},
                     {"gated", e.gated},
                     {"user", e.user},
                     {"description", e.description}});
      else
        std::printf("%-22s %-42s %-7s %s%s\n", e.alias.c_str(), e.target.c_str(),
                    cached ? "yes" : "", e.description.c_str(), e.gated ? " (gated)" : "");
    }
    if (json) std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  auto models = hub::ListModels(o);
  if (!models.ok()) return Fail(models.status());
  if (json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& m : *models) j.push_back(m.ToJson());
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  auto aliases = AliasesByRepo(o);
  std::printf("%-44s %-9s %-36s %-10s %-9s %s\n", "NAME", "SIZE", "ARCHITECTURE", "MODALITY",
              "DTYPE", "PULLED");
  for (const auto& m : *models) {
    std::string name = m.name;
    if (auto it = aliases.find(m.name); it != aliases.end()) name += " (" + it->second + ")";
    std::printf("%-44s %-9s %-36s %-10s %-9s %s\n", name.c_str(), HumanBytes(m.size_bytes).c_str(),
                m.architecture.empty() ? "-" : m.architecture.c_str(), m.modality.c_str(),
                m.dtype.empty() ? "-" : m.dtype.c_str(), Ago(m.modified_unix).c_str());
  }
  if (models->empty())
    std::fprintf(stderr, "no models in %s (try `engine pull qwen2.5:0.5b`)\n", o.cache_dir.c_str());
  return 0;
}

int Show(const std::string& name, bool json) {
  auto d = hub::ShowModel(name, HubOptionsFromEnv());
  if (!d.ok()) return Fail(d.status());
  if (json) {
    std::printf("%s\n", d->ToJson().dump(2).c_str());
    return 0;
  }
  const hub::ModelInfo& i = d->info;
  auto row = [](const char* k, const std::string& v) {
    if (!v.empty()) std::printf("  %-16s %s\n", k, v.c_str());
  };
  auto num = [](int64_t v) { return v > 0 ? std::to_string(v) : std::string(); };
  std::printf("Model\n");
  row("name", i.name);
  row("path", i.dir);
  row("commit", i.commit);
  row("architecture", i.architecture);
  row("model type", i.model_type);
  row("modality", i.modality);
  row("parameters",
      d->parameters > 0 ? Count(d->parameters) + " (" + std::to_string(d->parameters) + ")" : "");
  row("context length", num(d->context_length));
  row("hidden size", num(d->hidden_size));
  row("layers", num(d->layers));
  row("vocabulary", num(d->vocab_size));
  row("dtype", i.dtype);
  row("size", HumanBytes(i.size_bytes));
  row("license", d->license);
  std::printf("Chat template\n  %s\n", d->chat_template ? "yes" : "none");
  if (d->chat_template) {
    std::string head = d->chat_template_head;
    for (size_t p = 0; (p = head.find('\n', p)) != std::string::npos && p + 1 < head.size(); p += 5)
      head.replace(p, 1, "\n    ");
    std::printf("    %s%s", head.c_str(), head.empty() || head.back() != '\n' ? "\n" : "");
  }
  std::printf("Files (%zu)\n", d->files.size());
  for (const auto& f : d->files) std::printf("  %s\n", f.c_str());
  return 0;
}

int Remove(const std::vector<std::string>& names) {
  hub::HubOptions o = HubOptionsFromEnv();
  for (const std::string& name : names) {
    auto removed = hub::RemoveModel(name, o);
    if (!removed.ok()) return Fail(removed.status());
    for (const auto& p : *removed) spdlog::debug("removed {}", p);
    std::fprintf(stderr, "deleted '%s'\n", name.c_str());
  }
  return 0;
}

std::string Until(const std::string& expires) {
  if (expires.empty() || expires.rfind("9999", 0) == 0) return "forever";
  return expires;
}

int Ps(const std::string& host, int port, bool json) {
  const std::string url = "http://" + host + ":" + std::to_string(port) + "/api/ps";
  auto r = hub::HttpGet(url, 5);
  if (!r.ok()) {
    spdlog::debug("{}", r.status().message());
    return Fail(FailedPrecondition("no Tessera server is listening on " + host + ":" +
                                   std::to_string(port) +
                                   " (start one with `engine serve`, or pass --host/--port)"));
  }
  if (r->status != 200)
    return Fail(FailedPrecondition(url + " answered HTTP " + std::to_string(r->status)));
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.contains("models") || !j["models"].is_array())
    return Fail(FailedPrecondition(url + " did not answer an Ollama /api/ps list"));
  if (json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%-40s %-10s %-10s %-8s %-8s %s\n", "NAME", "SIZE", "GPU MEM", "CONTEXT", "RUNNING",
              "UNTIL");
  for (const auto& m : j["models"]) {
    auto i64 = [&](const char* k) {
      return m.contains(k) && m[k].is_number_integer() ? m[k].get<int64_t>() : int64_t{0};
    };
    auto str = [&](const char* k) {
      return m.contains(k) && m[k].is_string() ? m[k].get<std::string>() : std::string();
    };
    std::printf("%-40s %-10s %-10s %-8s %-8s %s\n", str("name").c_str(),
                HumanBytes(i64("size")).c_str(),
                i64("size_vram") ? HumanBytes(i64("size_vram")).c_str() : "-",
                i64("context_length") ? std::to_string(i64("context_length")).c_str() : "-",
                std::to_string(i64("running_sequences")).c_str(), Until(str("expires_at")).c_str());
  }
  return 0;
}

}  // namespace

StatusOr<std::string> ResolveModelDir(const std::string& name, bool pull_if_missing) {
  hub::HubOptions o = HubOptionsFromEnv();
  TSR_ASSIGN_OR_RETURN(hub::ResolvedModel m, hub::ResolveModel(name, o));
  if (m.present()) return m.dir;
  if (!pull_if_missing)
    return NotFound(m.ref.ToString() + " is not in the cache (" + o.cache_dir +
                    "): run `engine pull " + name + "`");
  TSR_ASSIGN_OR_RETURN(hub::PullResult r, PullWithProgress(m, o, /*ask=*/true));
  return r.snapshot_dir;
}

Handler AddModelCommands(CLI::App& app, GlobalFlags* g) {
  auto* pull = app.add_subcommand("pull", "Download models from the Hugging Face Hub");
  auto* list = app.add_subcommand("list", "List the models in the Hugging Face cache");
  auto* show = app.add_subcommand("show", "Describe a model: config, parameters, template");
  auto* rm = app.add_subcommand("rm", "Remove models (or one revision) from the cache");
  auto* ps = app.add_subcommand("ps", "Show the models a running server has loaded");
  struct Flags {
    std::vector<std::string> names;
    std::string name, host = "127.0.0.1";
    int port = 11435;
    bool json = false, catalogue = false;
  };
  auto f = std::make_shared<Flags>();
  pull->add_option("model", f->names, "ORG/NAME[@REVISION] or an alias (see list --catalogue)")
      ->required();
  list->add_flag("--json", f->json, "JSON output");
  list->add_flag("--catalogue", f->catalogue, "List the model aliases instead");
  show->add_option("model", f->name, "Alias, ORG/NAME[@REVISION] or folder")->required();
  show->add_flag("--json", f->json, "JSON output");
  rm->add_option("model", f->names, "Alias or ORG/NAME (all revisions) or ORG/NAME@REVISION")
      ->required();
  ps->add_option("--host", f->host, "Server address (default 127.0.0.1)");
  ps->add_option("--port", f->port, "Server port (default 11435)");
  ps->add_flag("--json", f->json, "JSON output (the server's /api/ps answer)");
  return [=]() -> int {
    if (!pull->parsed() && !list->parsed() && !show->parsed() && !rm->parsed() && !ps->parsed())
      return -1;
    auto settings = ResolveSettings(*g);  // starts logging at the requested level
    if (!settings.ok()) return Fail(settings.status());
    if (pull->parsed()) return Pull(f->names);
    if (list->parsed()) return List(f->json, f->catalogue);
    if (show->parsed()) return Show(f->name, f->json);
    if (rm->parsed()) return Remove(f->names);
    return Ps(f->host, f->port, f->json);
  };
}

}  // namespace tessera::cli
