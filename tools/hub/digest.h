// Streaming SHA-256 / SHA-1 over OpenSSL's EVP interface (private to tessera_hub). libcrypto is
// loaded at run time (runtime_libs.h), so making a Digest can fail.
#ifndef TESSERA_HUB_DIGEST_H_
#define TESSERA_HUB_DIGEST_H_

#include <memory>
#include <string>

#include "tessera/core/status.h"

struct evp_md_ctx_st;

namespace tessera::hub::internal {

struct CryptoApi;

class Digest {
 public:
  static StatusOr<Digest> Sha256();
  static StatusOr<Digest> Sha1();
  void Update(const void* data, size_t n);
  // Lower-case hex of the digest. The object is spent afterwards.
  std::string HexFinal();

 private:
  struct Free {
    const CryptoApi* api;
    void operator()(evp_md_ctx_st* c) const;
  };
  static StatusOr<Digest> Make(bool sha256);
  Digest(const CryptoApi* api, evp_md_ctx_st* ctx) : api_(api), ctx_(ctx, Free{api}) {}
  const CryptoApi* api_;
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

// sha256 of a file's bytes: what the Hub reports as an LFS file's oid (and its ETag).
StatusOr<std::string> FileSha256(const std::string& path);
// The git blob id of a file: sha1("blob <size>\0" + bytes), the ETag of a non-LFS file.
StatusOr<std::string> GitBlobSha1(const std::string& path);

}  // namespace tessera::hub::internal

#endif  // TESSERA_HUB_DIGEST_H_
