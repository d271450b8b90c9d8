// Where the Hugging Face cache lives, which Hub to talk to and with what credentials.
//
// Library code never reads the environment: the CLI and the server build one HubOptions at
// start-up (FromEnvironment) and pass it down explicitly.
#ifndef TESSERA_HUB_OPTIONS_H_
#define TESSERA_HUB_OPTIONS_H_

#include <functional>
#include <string>

namespace tessera::hub {

struct HubOptions {
  // The Hub cache root holding models--ORG--NAME folders ($HF_HUB_CACHE, $HF_HOME/hub,
  // ~/.cache/huggingface/hub).
  std::string cache_dir;
  // Base URL of the Hub or a mirror, without a trailing slash ($HF_ENDPOINT).
  std::string endpoint = "https://huggingface.co";
  // Sent as "Authorization: Bearer <token>" to the endpoint's host only; "" = anonymous.
  std::string token;
  // The user's alias file (JSON, docs/models.md); "" or a missing file = built-in names only.
  std::string catalogue_file;
  // No network at all ($HF_HUB_OFFLINE=1): a pull succeeds only from the cache.
  bool offline = false;
  // Files downloaded at once.
  int workers = 4;
  // Attempts per request after a dropped connection, 429 or 5xx (each resumes where it stopped).
  int max_retries = 4;
  // First back-off between attempts; doubles each time (a Retry-After header wins, capped).
  int retry_base_ms = 500;
  // A transfer slower than 1 byte/s for this long counts as dropped.
  int stall_timeout_s = 60;
  int connect_timeout_s = 15;
  std::string user_agent = "tessera";
  // CA certificates for HTTPS; "" = libcurl's built-in default. FromEnvironment fills it from
  // CURL_CA_BUNDLE / SSL_CERT_FILE / REQUESTS_CA_BUNDLE, or, when the built-in Debian path is
  // missing (a relocatable bundle on another distribution), from the first well-known file found.
  std::string ca_bundle;

  // Builds options from the huggingface_hub environment variables (HF_HOME, HF_HUB_CACHE,
  // HUGGINGFACE_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, HF_TOKEN_PATH and the
  // token file $HF_HOME/token, HF_HUB_OFFLINE, XDG_CACHE_HOME) plus TESSERA_MODELS_FILE and
  // XDG_CONFIG_HOME for the alias file and the CA variables above. `env` returns nullptr for an
  // unset variable. Reads the token file and probes CA files; call once at start-up.
  static HubOptions FromEnvironment(const std::function<const char*(const char*)>& env);
};

}  // namespace tessera::hub

#endif  // TESSERA_HUB_OPTIONS_H_
