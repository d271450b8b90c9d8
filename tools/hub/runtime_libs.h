// libcurl and OpenSSL's libcrypto, loaded with dlopen the first time a download needs them
// (private to tessera_hub).
//
// Why not link them: only `engine pull` (and the server's /api/pull) downloads, yet Debian's
// libcurl drags in about 16 MB of TLS, Kerberos, LDAP, SSH and IDN libraries that the
// self-contained packages would have to carry (docs/packaging.md). Loaded from the system
// instead, the engine starts and runs local and cached models without them, and a download uses
// the system's libcurl together with the very libcrypto that libcurl was built against (a
// bundled libcrypto next to a system libssl can be of an incompatible OpenSSL release).
//
// The headers (libcurl4-openssl-dev, libssl-dev) still provide the types and constants; the
// function pointers below have the headers' own signatures. Nothing here is ever unloaded.
#ifndef TESSERA_HUB_RUNTIME_LIBS_H_
#define TESSERA_HUB_RUNTIME_LIBS_H_

#include <curl/curl.h>
#include <openssl/evp.h>

#include "tessera/core/status.h"

namespace tessera::hub::internal {

// The libcurl functions tessera_hub calls. `decltype(&f)` only names the declarations, so the
// binary has no link dependency on libcurl.
struct CurlApi {
  decltype(&curl_global_init) global_init;
  decltype(&curl_version_info) version_info;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_reset) easy_reset;
  decltype(&curl_easy_setopt) easy_setopt;  // variadic, as in libcurl: no compile-time type check
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

// The libcrypto functions of the download digests (SHA-256 of LFS files, git's SHA-1).
struct CryptoApi {
  decltype(&EVP_MD_CTX_new) md_ctx_new;
  decltype(&EVP_MD_CTX_free) md_ctx_free;
  decltype(&EVP_DigestInit_ex) digest_init_ex;
  decltype(&EVP_DigestUpdate) digest_update;
  decltype(&EVP_DigestFinal_ex) digest_final_ex;
  decltype(&EVP_sha256) sha256;
  decltype(&EVP_sha1) sha1;
};

// Loads libcurl once per process (thread-safe) and runs curl_global_init: $TESSERA_LIBCURL if set
// (a path or a soname), else libcurl.so.4, else libcurl-gnutls.so.4 (Debian's GnuTLS build, which
// git pulls in), else libcurl-nss.so.4: the three Debian flavours share one ABI.
// FailedPrecondition, saying which package to install, when none loads or the one found is older
// than 7.85 (CURLOPT_PROTOCOLS_STR).
StatusOr<const CurlApi*> LoadCurl();

// Loads libcrypto once per process: $TESSERA_LIBCRYPTO if set, else libcrypto.so.3, else
// libcrypto.so.1.1. FailedPrecondition with the package to install when none loads.
StatusOr<const CryptoApi*> LoadCrypto();

// OK when downloads can work: both libraries load. Pull checks this before it touches the network.
Status DownloadSupport();

}  // namespace tessera::hub::internal

#endif  // TESSERA_HUB_RUNTIME_LIBS_H_
