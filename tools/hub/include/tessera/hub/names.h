// Model names: a folder, ORG/NAME[@REVISION], or a short alias from the catalogue
// (docs/models.md), and where each one lives in the Hugging Face cache.
#ifndef TESSERA_HUB_NAMES_H_
#define TESSERA_HUB_NAMES_H_

#include <string>
#include <vector>

#include "tessera/core/status.h"
#include "tessera/hub/options.h"

namespace tessera::hub {

// A model repository on the Hub at one revision (branch, tag or 40-hex commit).
struct RepoRef {
  std::string repo;               // "ORG/NAME"
  std::string revision = "main";  // never empty
  std::string ToString() const;   // "ORG/NAME" or "ORG/NAME@rev"
};

// Parses "ORG/NAME[@REV]" (also "hf.co/ORG/NAME", "https://huggingface.co/ORG/NAME").
// Validates the repo id as huggingface_hub does (letters, digits, '-', '_', '.'; no "--" or
// ".."; at most 96 characters) and the revision (no "..", no control characters).
StatusOr<RepoRef> ParseRepoRef(const std::string& text);

// True for a 40-hex git commit id.
bool IsCommitHash(const std::string& s);

// One alias of the catalogue.
struct CatalogueEntry {
  std::string alias;        // "qwen2.5:0.5b"
  std::string target;       // "Qwen/Qwen2.5-0.5B-Instruct" or "ORG/NAME@rev"
  std::string description;  // one line
  bool gated = false;       // needs an accepted licence and HF_TOKEN
  bool user = false;        // from the user's file rather than built in
};

// The built-in aliases followed by the user's file (whose entries override built-in ones of the
// same alias). A missing file is fine; a malformed one is an InvalidArgument naming the file.
StatusOr<std::vector<CatalogueEntry>> LoadCatalogue(const HubOptions& options);
const std::vector<CatalogueEntry>& BuiltinCatalogue();

// What a MODEL argument names.
struct ResolvedModel {
  enum class Kind { kFolder, kHub };
  Kind kind = Kind::kHub;
  // The folder to load: the given folder, or the cached snapshot; "" when not in the cache.
  std::string dir;
  RepoRef ref;                  // kHub only
  bool revision_given = false;  // the name (or its alias) named a revision after '@'
  std::string alias;            // the alias used, if any
  bool gated = false;
  bool present() const { return !dir.empty(); }
};

// Resolves `name`: an existing folder (or anything starting with '/', './', '../', '~/' -- an
// error if missing), then an alias, then ORG/NAME[@REV]; a Hub model is looked up in the cache
// (refs/REV -> snapshots/COMMIT). Reads only the local disk. Thread-safe.
StatusOr<ResolvedModel> ResolveModel(const std::string& name, const HubOptions& options);

// The cached snapshot folder of `ref`, or "" when it is not there (no ref, or no snapshot).
std::string FindSnapshot(const RepoRef& ref, const HubOptions& options);

}  // namespace tessera::hub

#endif  // TESSERA_HUB_NAMES_H_
