#include "digest.h"

#include <cstdio>
#include <filesystem>
#include <vector>

#include "runtime_libs.h"

namespace tessera::hub::internal {

void Digest::Free::operator()(evp_md_ctx_st* c) const {
  api->md_ctx_free(c);
}

StatusOr<Digest> Digest::Make(bool sha256) {
  TSR_ASSIGN_OR_RETURN(const CryptoApi* api, LoadCrypto());
  Digest d(api, api->md_ctx_new());
  TSR_CHECK(d.ctx_ != nullptr);
  TSR_CHECK(api->digest_init_ex(d.ctx_.get(), sha256 ? api->sha256() : api->sha1(), nullptr) == 1);
  return d;
}

StatusOr<Digest> Digest::Sha256() {
  return Make(true);
}
StatusOr<Digest> Digest::Sha1() {
  return Make(false);
}

void Digest::Update(const void* data, size_t n) {
  TSR_CHECK(api_->digest_update(ctx_.get(), data, n) == 1);
}

std::string Digest::HexFinal() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  TSR_CHECK(api_->digest_final_ex(ctx_.get(), md, &len) == 1);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

static Status HashFile(const std::string& path, Digest* d) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return NotFound("cannot read " + path);
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) d->Update(buf.data(), n);
  if (std::ferror(f.get())) return FailedPrecondition("read error on " + path);
  return OkStatus();
}

StatusOr<std::string> FileSha256(const std::string& path) {
  TSR_ASSIGN_OR_RETURN(Digest d, Digest::Sha256());
  TSR_RETURN_IF_ERROR(HashFile(path, &d));
  return d.HexFinal();
}

StatusOr<std::string> GitBlobSha1(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return NotFound("cannot read " + path + ": " + ec.message());
  TSR_ASSIGN_OR_RETURN(Digest d, Digest::Sha1());
  std::string header = "blob " + std::to_string(size);
  d.Update(header.data(), header.size() + 1);  // with the terminating NUL, as git hashes it
  TSR_RETURN_IF_ERROR(HashFile(path, &d));
  return d.HexFinal();
}

}  // namespace tessera::hub::internal
