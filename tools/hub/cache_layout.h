// The Hub cache layout (private to tessera_hub): folder names, untrusted-path checks and atomic
// file operations. Every path built from Hub data goes through ValidateRepoPath /
// ValidateBlobName first, so nothing lands outside the cache.
#ifndef TESSERA_HUB_CACHE_LAYOUT_H_
#define TESSERA_HUB_CACHE_LAYOUT_H_

#include <filesystem>
#include <string>

#include "tessera/core/status.h"

namespace tessera::hub::internal {

namespace fs = std::filesystem;

// "ORG/NAME" -> "models--ORG--NAME".
std::string RepoFolderName(const std::string& repo);
// "models--ORG--NAME" -> "ORG/NAME"; "" for other folders (datasets--, spaces--, junk).
std::string RepoFromFolderName(const std::string& folder);

// Rejects what could leave the snapshot folder or confuse a file system: empty paths, absolute
// paths, backslashes, empty / "." / ".." components, control characters, over-long paths.
// `what` names the value in the error ("file name", "revision").
Status ValidateRepoPath(const std::string& path, const std::string& what = "file name");
// A blob name (an ETag: hex sha1 / sha256, or a mirror's opaque tag) must be one plain
// component: [A-Za-z0-9._-], not starting with '.', at most 128 characters.
Status ValidateBlobName(const std::string& etag);

// The relative target of snapshots/{commit}/{path} -> blobs/{etag}: "../../blobs/{etag}" with
// one more "../" per folder level of `path`. REQUIRES: path validated.
std::string BlobLinkTarget(const std::string& path, const std::string& etag);

// True if `p` is `root` or below it, comparing canonical forms of the longest existing prefixes
// (symlinks resolved), so a link inside the cache pointing out of it does not count as inside.
bool IsInside(const fs::path& root, const fs::path& p);

// The commit refs/{revision} names, or "" when the ref is missing or does not hold a commit.
std::string ReadRef(const fs::path& repo_dir, const std::string& revision);

// Writes `content` to a unique temporary file next to `path`, then renames it over `path`:
// readers see the old or the new file, never half of one. Creates parent folders.
Status WriteFileAtomic(const fs::path& path, const std::string& content);
// Creates or replaces the symlink `link` -> `target` atomically (symlink to a temporary name,
// then rename). Creates parent folders.
Status SymlinkAtomic(const std::string& target, const fs::path& link);

// A unique suffix for temporary names: ".tmp.<pid>.<thread>.<counter>".
std::string TempSuffix();

}  // namespace tessera::hub::internal

#endif  // TESSERA_HUB_CACHE_LAYOUT_H_
