#include "cache_layout.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

namespace tessera::hub::internal {

std::string RepoFolderName(const std::string& repo) {
  std::string out = "models--";
  for (char c : repo) {
    if (c == '/')
      out += "--";
    else
      out += c;
  }
  return out;
}

std::string RepoFromFolderName(const std::string& folder) {
  const std::string prefix = "models--";
  if (folder.rfind(prefix, 0) != 0) return "";
  std::string rest = folder.substr(prefix.size());
  // Repo ids never contain "--" (huggingface_hub's validate_repo_id), so the first one
  // separates the organisation from the name.
  size_t sep = rest.find("--");
  if (sep == std::string::npos) return rest.empty() ? "" : rest;  // a legacy id without an org
  return rest.substr(0, sep) + "/" + rest.substr(sep + 2);
}

Status ValidateRepoPath(const std::string& path, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("unsafe " + what + " from the Hub '" + path + "': " + why +
                           " (refusing to write outside the cache)");
  };
  if (path.empty()) return bad("empty");
  if (path.size() > 1024) return bad("longer than 1024 characters");
  if (path.front() == '/') return bad("absolute path");
  if (path.size() >= 2 && path[1] == ':' && std::isalpha(static_cast<unsigned char>(path[0])))
    return bad("drive letter");
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) return bad("control character");
    if (c == '\\') return bad("backslash");
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part.empty()) return bad("empty path component");
    if (part == "." || part == "..") return bad("'" + part + "' component");
    if (part.size() > 255) return bad("component longer than 255 characters");
    start = end + 1;
  }
  return OkStatus();
}

Status ValidateBlobName(const std::string& etag) {
  if (etag.empty() || etag.size() > 128 || etag.front() == '.')
    return InvalidArgument("unsafe blob name (ETag) from the Hub: '" + etag + "'");
  for (char c : etag) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return InvalidArgument("unsafe blob name (ETag) from the Hub: '" + etag + "'");
  }
  return OkStatus();
}

std::string BlobLinkTarget(const std::string& path, const std::string& etag) {
  std::string up = "../../";
  for (char c : path)
    if (c == '/') up += "../";
  return up + "blobs/" + etag;
}

bool IsInside(const fs::path& root, const fs::path& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(root, ec);
  if (ec) return false;
  fs::path q = fs::weakly_canonical(p, ec);
  if (ec) return false;
  auto ri = r.begin(), qi = q.begin();
  for (; ri != r.end(); ++ri, ++qi) {
    if (ri->empty()) continue;  // a trailing separator
    if (qi == q.end() || *ri != *qi) return false;
  }
  return true;
}

static bool IsHex40(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string ReadRef(const fs::path& repo_dir, const std::string& revision) {
  if (!ValidateRepoPath(revision, "revision").ok()) return "";
  std::ifstream in(repo_dir / "refs" / revision);
  std::string commit;
  if (!in || !std::getline(in, commit)) return "";
  while (!commit.empty() && (commit.back() == '\r' || commit.back() == ' ')) commit.pop_back();
  return IsHex40(commit) ? commit : "";
}

std::string TempSuffix() {
  static std::atomic<uint64_t> counter{0};
  std::ostringstream s;
  s << ".tmp." << getpid() << "."
    << std::hash<std::thread::id>{}(std::this_thread::get_id()) % 100000 << "."
    << counter.fetch_add(1);
  return s.str();
}

Status WriteFileAtomic(const fs::path& path, const std::string& content) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return FailedPrecondition("cannot create " + path.parent_path().string() + ": " + ec.message());
  fs::path tmp = path.string() + TempSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return FailedPrecondition("cannot write " + tmp.string() + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      fs::remove(tmp, ec);
      return (err == ENOSPC || err == EFBIG || err == EDQUOT)
                 ? ResourceExhausted("disk full writing " + path.string() + ": " +
                                     std::strerror(err))
                 : FailedPrecondition("cannot write " + path.string() + ": " + std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return FailedPrecondition("cannot rename into " + path.string() + ": " + ec.message());
  }
  return OkStatus();
}

Status SymlinkAtomic(const std::string& target, const fs::path& link) {
  std::error_code ec;
  fs::create_directories(link.parent_path(), ec);
  if (ec)
    return FailedPrecondition("cannot create " + link.parent_path().string() + ": " + ec.message());
  fs::path tmp = link.string() + TempSuffix();
  fs::create_symlink(target, tmp, ec);
  if (ec)
    return FailedPrecondition("cannot create the link " + link.string() + ": " + ec.message());
  fs::rename(tmp, link, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return FailedPrecondition("cannot create the link " + link.string() + ": " + ec.message());
  }
  return OkStatus();
}

}  // namespace tessera::hub::internal
