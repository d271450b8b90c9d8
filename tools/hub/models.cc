// The local side of model management: list, inspect and remove what the Hub cache holds.
#include "tessera/hub/models.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "cache_layout.h"
#include "tessera/hub/names.h"

namespace tessera::hub {

namespace fs = std::filesystem;
using internal::IsInside;
using internal::RepoFolderName;
using internal::RepoFromFolderName;

std::string HumanBytes(int64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : (v < 10 ? "%.1f %s" : "%.0f %s"), v,
                units[u]);
  return buf;
}

std::string RepoOfSnapshotDir(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  if (!IsCommitHash(p.filename().string()) || p.parent_path().filename() != "snapshots") return "";
  return RepoFromFolderName(p.parent_path().parent_path().filename().string());
}

namespace {

nlohmann::json ReadJson(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return nlohmann::json();
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

std::string StringField(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

int64_t IntField(const nlohmann::json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys)
    if (j.is_object() && j.contains(k) && j[k].is_number_integer()) return j[k].get<int64_t>();
  return 0;
}

// text / embedding / rerank from the architectures and the sentence-transformers files.
std::string GuessModality(const fs::path& dir, const nlohmann::json& config) {
  std::string arch;
  if (config.contains("architectures") && config["architectures"].is_array() &&
      !config["architectures"].empty() && config["architectures"][0].is_string())
    arch = config["architectures"][0].get<std::string>();
  auto has = [&](const char* s) { return arch.find(s) != std::string::npos; };
  std::error_code ec;
  if (has("ForSequenceClassification")) {
    size_t labels = config.contains("id2label") && config["id2label"].is_object()
                        ? config["id2label"].size()
                        : static_cast<size_t>(IntField(config, {"num_labels"}));
    if (labels <= 1) return "rerank";  // one relevance logit: a cross-encoder
  }
  for (const char* f :
       {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"})
    if (fs::exists(dir / f, ec)) return "embedding";
  if (has("ForCausalLM") || has("LMHeadModel") || has("ForConditionalGeneration")) return "text";
  if (has("Model") && !has("For")) return "embedding";  // a bare encoder (BertModel, ...)
  return arch.empty() ? "unknown" : "text";
}

void FillFromConfig(const fs::path& dir, ModelInfo* info) {
  nlohmann::json config = ReadJson(dir / "config.json");
  if (config.contains("architectures") && config["architectures"].is_array() &&
      !config["architectures"].empty() && config["architectures"][0].is_string())
    info->architecture = config["architectures"][0].get<std::string>();
  info->model_type = StringField(config, "model_type");
  info->dtype = StringField(config, "torch_dtype");
  if (info->dtype.empty()) info->dtype = StringField(config, "dtype");
  if (info->dtype.empty() && config.contains("text_config"))
    info->dtype = StringField(config["text_config"], "torch_dtype");
  info->modality = GuessModality(dir, config);
}

// Size of the snapshot's files (each blob once) and the newest link time.
void FillSizeAndTime(const fs::path& dir, ModelInfo* info) {
  std::set<std::string> seen;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0)
      info->modified_unix = std::max<int64_t>(info->modified_unix, st.st_mtime);
    std::error_code e2;
    if (!fs::is_regular_file(it->path(), e2)) continue;  // follows the link
    fs::path target = fs::canonical(it->path(), e2);
    if (e2 || !seen.insert(target.string()).second) continue;
    info->size_bytes += static_cast<int64_t>(fs::file_size(target, e2));
  }
}

// refs/** -> commit, as {commit: [ref names]}.
std::map<std::string, std::vector<std::string>> ReadRefs(const fs::path& repo_dir) {
  std::map<std::string, std::vector<std::string>> out;
  std::error_code ec;
  fs::path refs = repo_dir / "refs";
  for (auto it = fs::recursive_directory_iterator(refs, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string name = it->path().lexically_relative(refs).string();
    std::string commit = internal::ReadRef(repo_dir, name);
    if (!commit.empty()) out[commit].push_back(name);
  }
  for (auto& [c, names] : out) std::sort(names.begin(), names.end());
  return out;
}

std::string DisplayName(const std::string& repo, const std::string& commit,
                        const std::vector<std::string>& refs) {
  if (std::find(refs.begin(), refs.end(), "main") != refs.end()) return repo;
  return repo + "@" + (refs.empty() ? commit : refs.front());
}

ModelInfo InfoOf(const std::string& repo, const fs::path& snapshot,
                 const std::vector<std::string>& refs) {
  ModelInfo info;
  info.repo = repo;
  info.commit = snapshot.filename().string();
  info.refs = refs;
  info.name = DisplayName(repo, info.commit, refs);
  info.dir = snapshot.string();
  FillFromConfig(snapshot, &info);
  FillSizeAndTime(snapshot, &info);
  return info;
}

}  // namespace

nlohmann::json ModelInfo::ToJson() const {
  return {{"name", name},
          {"repo", repo},
          {"refs", refs},
          {"commit", commit},
          {"path", dir},
          {"size", size_bytes},
          {"architecture", architecture},
          {"model_type", model_type},
          {"modality", modality},
          {"dtype", dtype},
          {"modified_at", modified_unix}};
}

StatusOr<std::vector<ModelInfo>> ListModels(const HubOptions& options) {
  std::vector<ModelInfo> out;
  std::error_code ec;
  if (!fs::is_directory(options.cache_dir, ec)) return out;
  for (const auto& repo_entry : fs::directory_iterator(options.cache_dir, ec)) {
    std::string repo = RepoFromFolderName(repo_entry.path().filename().string());
    if (repo.empty() || !repo_entry.is_directory()) continue;
    auto refs = ReadRefs(repo_entry.path());
    std::error_code e2;
    for (const auto& snap : fs::directory_iterator(repo_entry.path() / "snapshots", e2)) {
      if (!snap.is_directory()) continue;
      out.push_back(InfoOf(repo, snap.path(), refs[snap.path().filename().string()]));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const ModelInfo& a, const ModelInfo& b) { return a.name < b.name; });
  return out;
}

namespace {

// Parameters of one safetensors file: the product of every tensor's shape in its JSON header
// (8-byte little-endian length, then the header). Returns 0 when the header is unreadable.
int64_t CountParameters(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  unsigned char len_bytes[8];
  if (!in.read(reinterpret_cast<char*>(len_bytes), 8)) return 0;
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | len_bytes[i];
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  if (ec || len == 0 || len > (100u << 20) || len + 8 > size) return 0;
  std::string header(len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(len))) return 0;
  nlohmann::json j = nlohmann::json::parse(header, nullptr, false);
  if (!j.is_object()) return 0;
  int64_t total = 0;
  for (const auto& [name, t] : j.items()) {
    if (name == "__metadata__" || !t.is_object() || !t.contains("shape") || !t["shape"].is_array())
      continue;
    int64_t n = 1;
    for (const auto& d : t["shape"]) n *= d.is_number_integer() ? d.get<int64_t>() : 0;
    total += n;
  }
  return total;
}

// The chat template: chat_template.jinja, chat_template.json, or tokenizer_config.json's
// "chat_template" (a string, or a list of {name, template} where "default" wins).
std::string FindChatTemplate(const fs::path& dir) {
  std::ifstream jinja(dir / "chat_template.jinja");
  if (jinja) return std::string(std::istreambuf_iterator<char>(jinja), {});
  for (const char* file : {"chat_template.json", "tokenizer_config.json"}) {
    nlohmann::json j = ReadJson(dir / file);
    if (!j.is_object() || !j.contains("chat_template")) continue;
    const auto& t = j["chat_template"];
    if (t.is_string()) return t.get<std::string>();
    if (t.is_array()) {
      std::string first;
      for (const auto& e : t) {
        std::string name = StringField(e, "name"), body = StringField(e, "template");
        if (name == "default") return body;
        if (first.empty()) first = body;
      }
      return first;
    }
  }
  return "";
}

// "license:" of README.md's YAML front matter (license_name when it is "other").
std::string ReadLicense(const fs::path& dir) {
  std::ifstream in(dir / "README.md");
  std::string line, license, license_name;
  if (!std::getline(in, line) || line.rfind("---", 0) != 0) return "";
  auto value = [](const std::string& l, size_t n) {
    std::string v = l.substr(n);
    v.erase(0, v.find_first_not_of(" \t\"'"));
    while (!v.empty() &&
           (v.back() == ' ' || v.back() == '\r' || v.back() == '"' || v.back() == '\''))
      v.pop_back();
    return v;
  };
  for (int i = 0; i < 200 && std::getline(in, line); ++i) {
    if (line.rfind("---", 0) == 0) break;
    if (line.rfind("license:", 0) == 0) license = value(line, 8);
    if (line.rfind("license_name:", 0) == 0) license_name = value(line, 13);
  }
  return license == "other" && !license_name.empty() ? license_name : license;
}

std::string FirstLines(const std::string& text, int n) {
  size_t pos = 0;
  for (int i = 0; i < n && pos != std::string::npos; ++i) {
    pos = text.find('\n', pos);
    if (pos != std::string::npos) ++pos;
  }
  return pos == std::string::npos ? text : text.substr(0, pos);
}

}  // namespace

nlohmann::json ModelDetails::ToJson() const {
  nlohmann::json j = info.ToJson();
  j["parameters"] = parameters;
  j["context_length"] = context_length;
  j["hidden_size"] = hidden_size;
  j["layers"] = layers;
  j["vocab_size"] = vocab_size;
  j["chat_template"] = chat_template;
  j["chat_template_head"] = chat_template_head;
  j["license"] = license;
  j["files"] = files;
  return j;
}

StatusOr<ModelDetails> InspectFolder(const std::string& dir_name) {
  const fs::path dir(dir_name);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("model folder '" + dir_name + "' does not exist");
  ModelDetails d;
  d.info.dir = dir_name;
  d.info.name = dir.filename().string();
  FillFromConfig(dir, &d.info);
  FillSizeAndTime(dir, &d.info);
  nlohmann::json config = ReadJson(dir / "config.json");
  // Multimodal checkpoints (Gemma 3, ...) keep the decoder's numbers under text_config.
  const nlohmann::json& text = config.contains("text_config") && config["text_config"].is_object()
                                   ? config["text_config"]
                                   : config;
  for (const nlohmann::json* c : std::initializer_list<const nlohmann::json*>{&config, &text}) {
    if (!d.context_length)
      d.context_length = IntField(
          *c, {"max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx"});
    if (!d.hidden_size) d.hidden_size = IntField(*c, {"hidden_size", "n_embd", "d_model"});
    if (!d.layers) d.layers = IntField(*c, {"num_hidden_layers", "n_layer", "num_layers"});
    if (!d.vocab_size) d.vocab_size = IntField(*c, {"vocab_size"});
  }
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::error_code e2;
    if (!fs::is_regular_file(it->path(), e2)) continue;
    std::string rel = it->path().lexically_relative(dir).string();  // not through the link
    d.files.push_back(rel);
    if (rel.find('/') == std::string::npos && rel.size() > 12 &&
        rel.compare(rel.size() - 12, 12, ".safetensors") == 0)
      d.parameters += CountParameters(it->path());
  }
  std::sort(d.files.begin(), d.files.end());
  std::string tmpl = FindChatTemplate(dir);
  d.chat_template = !tmpl.empty();
  d.chat_template_head = FirstLines(tmpl, 3);
  d.license = ReadLicense(dir);
  return d;
}

StatusOr<ModelDetails> ShowModel(const std::string& name, const HubOptions& options) {
  TSR_ASSIGN_OR_RETURN(ResolvedModel m, ResolveModel(name, options));
  if (m.kind == ResolvedModel::Kind::kHub && !m.present())
    return NotFound(m.ref.ToString() + " is not in the cache (" + options.cache_dir +
                    "): run `engine pull " + name + "`");
  TSR_ASSIGN_OR_RETURN(ModelDetails d, InspectFolder(m.dir));
  if (m.kind == ResolvedModel::Kind::kHub) {
    fs::path repo_dir = fs::path(options.cache_dir) / RepoFolderName(m.ref.repo);
    auto refs = ReadRefs(repo_dir);
    ModelInfo info = InfoOf(m.ref.repo, m.dir, refs[fs::path(m.dir).filename().string()]);
    d.info = info;
  }
  return d;
}

namespace {

// Blob names that some snapshot of `repo_dir` still links to.
std::set<std::string> LiveBlobs(const fs::path& repo_dir) {
  std::set<std::string> live;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(repo_dir / "snapshots", ec);
       !ec && it != fs::end(it); it.increment(ec)) {
    std::error_code e2;
    if (!it->is_symlink(e2)) continue;
    live.insert(fs::read_symlink(it->path(), e2).filename().string());
  }
  return live;
}

// Removes one snapshot, the refs naming it, and blobs left unreferenced; the whole repo folder
// when no snapshot remains.
StatusOr<std::vector<std::string>> RemoveSnapshot(const fs::path& repo_dir,
                                                  const fs::path& lock_dir,
                                                  const std::string& commit) {
  std::vector<std::string> removed;
  std::error_code ec;
  fs::path snap = repo_dir / "snapshots" / commit;
  fs::remove_all(snap, ec);  // removes the links, never what they point to
  if (ec) return FailedPrecondition("cannot remove " + snap.string() + ": " + ec.message());
  removed.push_back(snap.string());
  for (const auto& [c, names] : ReadRefs(repo_dir)) {
    if (c != commit) continue;
    for (const std::string& n : names) {
      fs::remove(repo_dir / "refs" / n, ec);
      removed.push_back((repo_dir / "refs" / n).string());
    }
  }
  if (fs::is_empty(repo_dir / "snapshots", ec)) {
    fs::remove_all(repo_dir, ec);
    fs::remove_all(lock_dir, ec);
    return std::vector<std::string>{repo_dir.string()};
  }
  std::set<std::string> live = LiveBlobs(repo_dir);
  for (const auto& b : fs::directory_iterator(repo_dir / "blobs", ec)) {
    std::string name = b.path().filename().string();
    if (name.find('.') != std::string::npos || live.count(name)) continue;  // .incomplete: a pull
    fs::remove(b.path(), ec);
    removed.push_back(b.path().string());
  }
  return removed;
}

}  // namespace

StatusOr<std::vector<std::string>> RemoveModel(const std::string& name, const HubOptions& options) {
  TSR_ASSIGN_OR_RETURN(ResolvedModel m, ResolveModel(name, options));
  const fs::path cache(options.cache_dir);
  std::error_code ec;
  if (m.kind == ResolvedModel::Kind::kFolder) {
    // Only a snapshot folder of the cache can be removed by path.
    fs::path p = fs::weakly_canonical(m.dir, ec);
    fs::path parent = p.parent_path();
    std::string repo = RepoFromFolderName(parent.parent_path().filename().string());
    if (!IsInside(cache, p) || parent.filename() != "snapshots" || repo.empty() ||
        !IsInside(cache, parent.parent_path()) || !IsCommitHash(p.filename().string()))
      return InvalidArgument("'" + name + "' is a folder outside the Hugging Face cache (" +
                             options.cache_dir + "): engine rm removes only cached models");
    return RemoveSnapshot(parent.parent_path(), cache / ".locks" / RepoFolderName(repo),
                          p.filename().string());
  }
  const fs::path repo_dir = cache / RepoFolderName(m.ref.repo);
  const fs::path lock_dir = cache / ".locks" / RepoFolderName(m.ref.repo);
  if (!fs::is_directory(repo_dir, ec))
    return NotFound(m.ref.repo + " is not in the cache (" + options.cache_dir + ")");
  if (!m.revision_given) {
    fs::remove_all(repo_dir, ec);
    if (ec) return FailedPrecondition("cannot remove " + repo_dir.string() + ": " + ec.message());
    fs::remove_all(lock_dir, ec);
    return std::vector<std::string>{repo_dir.string()};
  }
  if (!m.present())
    return NotFound("revision '" + m.ref.revision + "' of " + m.ref.repo + " is not in the cache");
  return RemoveSnapshot(repo_dir, lock_dir, fs::path(m.dir).filename().string());
}

}  // namespace tessera::hub
