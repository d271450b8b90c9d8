#include "tessera/hub/names.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cache_layout.h"

namespace tessera::hub {

namespace fs = std::filesystem;

std::string RepoRef::ToString() const {
  return revision == "main" ? repo : repo + "@" + revision;
}

bool IsCommitHash(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

static bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// huggingface_hub's validate_repo_id: each part is [\w\-.]+ starting and ending with a word
// character; no "--" or ".."; not ending in ".git"; at most 96 characters.
static Status ValidateRepoId(const std::string& repo) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("'" + repo + "' is not a Hugging Face model id (ORG/NAME): " + why);
  };
  if (repo.size() > 96) return bad("longer than 96 characters");
  size_t slash = repo.find('/');
  if (slash == std::string::npos || repo.find('/', slash + 1) != std::string::npos)
    return bad("expected exactly one '/'");
  for (const std::string& part : {repo.substr(0, slash), repo.substr(slash + 1)}) {
    if (part.empty()) return bad("empty organisation or name");
    if (!IsWordChar(part.front()) || !IsWordChar(part.back()))
      return bad("a part starts or ends with '-' or '.'");
    for (char c : part)
      if (!IsWordChar(c) && c != '-' && c != '.') return bad(std::string("character '") + c + "'");
  }
  if (repo.find("--") != std::string::npos || repo.find("..") != std::string::npos)
    return bad("'--' and '..' are not allowed");
  if (repo.size() >= 4 && repo.compare(repo.size() - 4, 4, ".git") == 0)
    return bad("ends with .git");
  return OkStatus();
}

StatusOr<RepoRef> ParseRepoRef(const std::string& text) {
  std::string s = text;
  for (const char* prefix :
       {"https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "hf.co/"}) {
    if (s.rfind(prefix, 0) == 0) {
      s = s.substr(std::string(prefix).size());
      break;
    }
  }
  RepoRef ref;
  size_t at = s.find('@');
  ref.repo = s.substr(0, at);
  if (at != std::string::npos) {
    ref.revision = s.substr(at + 1);
    if (ref.revision.empty()) return InvalidArgument("empty revision after '@' in '" + text + "'");
    TSR_RETURN_IF_ERROR(internal::ValidateRepoPath(ref.revision, "revision"));
  }
  TSR_RETURN_IF_ERROR(ValidateRepoId(ref.repo));
  return ref;
}

const std::vector<CatalogueEntry>& BuiltinCatalogue() {
  // Small and real: instruct checkpoints published as safetensors, plus the embedding and
  // reranking models people reach for first.
  static const std::vector<CatalogueEntry> kEntries = {
      {"qwen2.5:0.5b", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen2.5 0.5B instruct", false, false},
      {"qwen2.5:1.5b", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen2.5 1.5B instruct", false, false},
      {"qwen2.5:3b", "Qwen/Qwen2.5-3B-Instruct", "Qwen2.5 3B instruct", false, false},
      {"qwen2.5:7b", "Qwen/Qwen2.5-7B-Instruct", "Qwen2.5 7B instruct", false, false},
      {"qwen3:0.6b", "Qwen/Qwen3-0.6B", "Qwen3 0.6B (thinking and non-thinking)", false, false},
      {"qwen3:1.7b", "Qwen/Qwen3-1.7B", "Qwen3 1.7B", false, false},
      {"qwen3:4b", "Qwen/Qwen3-4B", "Qwen3 4B", false, false},
      {"llama3.2:1b", "meta-llama/Llama-3.2-1B-Instruct", "Llama 3.2 1B instruct", true, false},
      {"llama3.2:3b", "meta-llama/Llama-3.2-3B-Instruct", "Llama 3.2 3B instruct", true, false},
      {"gemma3:1b", "google/gemma-3-1b-it", "Gemma 3 1B instruct", true, false},
      {"smollm2:135m", "HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2 135M instruct", false,
       false},
      {"smollm2:360m", "HuggingFaceTB/SmolLM2-360M-Instruct", "SmolLM2 360M instruct", false,
       false},
      {"smollm2:1.7b", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "SmolLM2 1.7B instruct", false,
       false},
      {"phi3.5", "microsoft/Phi-3.5-mini-instruct", "Phi-3.5 mini instruct (3.8B)", false, false},
      {"bge-m3", "BAAI/bge-m3", "BGE-M3 multilingual embeddings", false, false},
      {"bge-reranker-v2-m3", "BAAI/bge-reranker-v2-m3", "BGE reranker v2 M3", false, false},
      {"qwen3-embedding:0.6b", "Qwen/Qwen3-Embedding-0.6B", "Qwen3 embeddings 0.6B", false, false},
      {"all-minilm", "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2 embeddings", false,
       false},
  };
  return kEntries;
}

static Status ParseUserEntry(const std::string& file, const std::string& alias,
                             const nlohmann::json& v, CatalogueEntry* e) {
  e->alias = alias;
  e->user = true;
  if (v.is_string()) {
    e->target = v.get<std::string>();
  } else if (v.is_object() && v.contains("repo") && v["repo"].is_string()) {
    e->target = v["repo"].get<std::string>();
    if (v.contains("revision") && v["revision"].is_string())
      e->target += "@" + v["revision"].get<std::string>();
    if (v.contains("description") && v["description"].is_string())
      e->description = v["description"].get<std::string>();
    if (v.contains("gated") && v["gated"].is_boolean()) e->gated = v["gated"].get<bool>();
  } else {
    return InvalidArgument(file + ": alias '" + alias +
                           "' must map to \"ORG/NAME[@REV]\" or {\"repo\": ...}");
  }
  auto parsed = ParseRepoRef(e->target);
  if (!parsed.ok()) return parsed.status().WithContext(file + ": alias '" + alias + "'");
  return OkStatus();
}

StatusOr<std::vector<CatalogueEntry>> LoadCatalogue(const HubOptions& options) {
  std::vector<CatalogueEntry> out = BuiltinCatalogue();
  if (options.catalogue_file.empty()) return out;
  std::ifstream in(options.catalogue_file);
  if (!in) return out;  // no user file: the built-in names only
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return InvalidArgument(options.catalogue_file + ": not a JSON object (see docs/models.md)");
  // Either {"aliases": {...}} or the alias object itself.
  const nlohmann::json& aliases =
      j.contains("aliases") && j["aliases"].is_object() ? j["aliases"] : j;
  for (const auto& [alias, v] : aliases.items()) {
    CatalogueEntry e;
    TSR_RETURN_IF_ERROR(ParseUserEntry(options.catalogue_file, alias, v, &e));
    // (e.alias, not the structured binding: clang 14 can not capture those in a lambda)
    auto same = std::find_if(out.begin(), out.end(),
                             [&](const CatalogueEntry& x) { return x.alias == e.alias; });
    if (same != out.end())
      *same = e;
    else
      out.push_back(e);
  }
  return out;
}

std::string FindSnapshot(const RepoRef& ref, const HubOptions& options) {
  fs::path repo_dir = fs::path(options.cache_dir) / internal::RepoFolderName(ref.repo);
  std::string commit =
      IsCommitHash(ref.revision) ? ref.revision : internal::ReadRef(repo_dir, ref.revision);
  if (commit.empty()) return "";
  fs::path snap = repo_dir / "snapshots" / commit;
  std::error_code ec;
  return fs::is_directory(snap, ec) ? snap.string() : "";
}

static bool LooksLikePath(const std::string& name) {
  return name.rfind("/", 0) == 0 || name.rfind("./", 0) == 0 || name.rfind("../", 0) == 0 ||
         name.rfind("~/", 0) == 0 || name == "." || name == "..";
}

StatusOr<ResolvedModel> ResolveModel(const std::string& name, const HubOptions& options) {
  if (name.empty()) return InvalidArgument("empty model name");
  ResolvedModel r;
  std::error_code ec;
  const std::string& path = name;
  if (fs::is_directory(path, ec) || LooksLikePath(name)) {
    if (!fs::is_directory(path, ec))
      return NotFound("model '" + name +
                      "' is not a folder (a model is a Hugging Face model folder, an alias or "
                      "ORG/NAME[@REVISION]: docs/models.md)");
    r.kind = ResolvedModel::Kind::kFolder;
    r.dir = path;
    return r;
  }
  TSR_ASSIGN_OR_RETURN(auto catalogue, LoadCatalogue(options));
  std::string target = name;
  for (const CatalogueEntry& e : catalogue) {
    if (e.alias == name) {
      r.alias = e.alias;
      r.gated = e.gated;
      target = e.target;
      break;
    }
  }
  auto ref = ParseRepoRef(target);
  if (!ref.ok()) {
    if (target.find('/') == std::string::npos)
      return NotFound("unknown model '" + name +
                      "': not a folder, not an alias (see `engine list --catalogue`) and not "
                      "ORG/NAME[@REVISION]");
    return ref.status();
  }
  r.kind = ResolvedModel::Kind::kHub;
  r.ref = *ref;
  r.revision_given = target.find('@') != std::string::npos;
  r.dir = FindSnapshot(r.ref, options);
  return r;
}

}  // namespace tessera::hub
