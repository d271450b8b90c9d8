#include "runtime_libs.h"

#include <dlfcn.h>

#include <cstdlib>
#include <initializer_list>
#include <string>

namespace tessera::hub::internal {
namespace {

// dlopens the first of `names` that loads (RTLD_LOCAL: its symbols stay out of the global scope,
// where they could interpose on a library the engine bundles). Appends every failure to `errors`.
void* OpenFirst(std::initializer_list<const char*> names, std::string* errors) {
  for (const char* name : names) {
    if (void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) return h;
    const char* e = dlerror();
    if (!errors->empty()) *errors += "; ";
    *errors += e ? e : name;
  }
  return nullptr;
}

// Resolves `name` into `*fn`; records it in `missing` when the library lacks it.
template <typename Fn>
void Resolve(void* h, const char* name, Fn* fn, std::string* missing) {
  *fn = reinterpret_cast<Fn>(dlsym(h, name));
  if (*fn == nullptr) *missing += std::string(missing->empty() ? "" : ", ") + name;
}

struct LoadedCurl {
  CurlApi api{};
  Status status;
};

LoadedCurl Curl() {
  LoadedCurl l;
  std::string errors;
  const char* env = std::getenv("TESSERA_LIBCURL");
  void* h = env && *env
                ? OpenFirst({env}, &errors)
                : OpenFirst({"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl-nss.so.4"}, &errors);
  if (h == nullptr) {
    l.status = FailedPrecondition(
        "downloads need libcurl, which this system lacks (Debian/Ubuntu: apt install libcurl4; "
        "Fedora/RHEL: dnf install libcurl); models in local folders and in the Hugging Face "
        "cache work without it [" +
        errors + "]");
    return l;
  }
  std::string missing;
  CurlApi& a = l.api;
  Resolve(h, "curl_global_init", &a.global_init, &missing);
  Resolve(h, "curl_version_info", &a.version_info, &missing);
  Resolve(h, "curl_easy_init", &a.easy_init, &missing);
  Resolve(h, "curl_easy_cleanup", &a.easy_cleanup, &missing);
  Resolve(h, "curl_easy_reset", &a.easy_reset, &missing);
  Resolve(h, "curl_easy_setopt", &a.easy_setopt, &missing);
  Resolve(h, "curl_easy_perform", &a.easy_perform, &missing);
  Resolve(h, "curl_easy_getinfo", &a.easy_getinfo, &missing);
  Resolve(h, "curl_easy_strerror", &a.easy_strerror, &missing);
  Resolve(h, "curl_slist_append", &a.slist_append, &missing);
  Resolve(h, "curl_slist_free_all", &a.slist_free_all, &missing);
  if (!missing.empty()) {
    l.status = FailedPrecondition("the libcurl found lacks " + missing);
    return l;
  }
  // CURLOPT_PROTOCOLS_STR (7.85) keeps transfers and redirects on http(s); an older libcurl
  // would ignore it silently, so it is refused instead.
  const curl_version_info_data* v = a.version_info(CURLVERSION_NOW);
  if (v == nullptr || v->version_num < 0x075500) {
    l.status = FailedPrecondition(std::string("downloads need libcurl 7.85 or newer; this system "
                                              "has ") +
                                  (v && v->version ? v->version : "an unknown version"));
    return l;
  }
  // curl_global_init is not thread-safe: it runs here, inside the once-only initialisation.
  if (a.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    l.status = FailedPrecondition("curl_global_init failed");
  return l;
}

struct LoadedCrypto {
  CryptoApi api{};
  Status status;
};

LoadedCrypto Crypto() {
  LoadedCrypto l;
  std::string errors;
  const char* env = std::getenv("TESSERA_LIBCRYPTO");
  void* h = env && *env ? OpenFirst({env}, &errors)
                        : OpenFirst({"libcrypto.so.3", "libcrypto.so.1.1"}, &errors);
  if (h == nullptr) {
    l.status = FailedPrecondition(
        "checking downloads needs OpenSSL's libcrypto, which this system lacks (Debian/Ubuntu: "
        "apt install libssl3; Fedora/RHEL: dnf install openssl-libs) [" +
        errors + "]");
    return l;
  }
  std::string missing;
  CryptoApi& a = l.api;
  Resolve(h, "EVP_MD_CTX_new", &a.md_ctx_new, &missing);
  Resolve(h, "EVP_MD_CTX_free", &a.md_ctx_free, &missing);
  Resolve(h, "EVP_DigestInit_ex", &a.digest_init_ex, &missing);
  Resolve(h, "EVP_DigestUpdate", &a.digest_update, &missing);
  Resolve(h, "EVP_DigestFinal_ex", &a.digest_final_ex, &missing);
  Resolve(h, "EVP_sha256", &a.sha256, &missing);
  Resolve(h, "EVP_sha1", &a.sha1, &missing);
  if (!missing.empty()) l.status = FailedPrecondition("the libcrypto found lacks " + missing);
  return l;
}

}  // namespace

StatusOr<const CurlApi*> LoadCurl() {
  static const LoadedCurl loaded = Curl();
  if (!loaded.status.ok()) return loaded.status;
  return &loaded.api;
}

StatusOr<const CryptoApi*> LoadCrypto() {
  static const LoadedCrypto loaded = Crypto();
  if (!loaded.status.ok()) return loaded.status;
  return &loaded.api;
}

Status DownloadSupport() {
  TSR_RETURN_IF_ERROR(LoadCurl().status());
  return LoadCrypto().status();
}

}  // namespace tessera::hub::internal
