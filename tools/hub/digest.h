// Streaming SHA-256 / SHA-1 over OpenSSL's EVP interface (private to tessera_hub).
#ifndef TESSERA_HUB_DIGEST_H_
#define TESSERA_HUB_DIGEST_H_

#include <memory>
#include <string>

#include "tessera/core/status.h"

struct evp_md_ctx_st;

namespace tessera::hub::internal {

class Digest {
 public:
  static Digest Sha256();
  static Digest Sha1();
  void Update(const void* data, size_t n);
  // Lower-case hex of the digest. The object is spent afterwards.
  std::string HexFinal();

 private:
  struct Free {
    void operator()(evp_md_ctx_st* c) const;
  };
  explicit Digest(bool sha256);
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

// sha256 of a file's bytes: what the Hub reports as an LFS file's oid (and its ETag).
StatusOr<std::string> FileSha256(const std::string& path);
// The git blob id of a file: sha1("blob <size>\0" + bytes), the ETag of a non-LFS file.
StatusOr<std::string> GitBlobSha1(const std::string& path);

}  // namespace tessera::hub::internal

#endif  // TESSERA_HUB_DIGEST_H_
