#include "tessera/hub/options.h"

#include <filesystem>
#include <fstream>
#include <string>

namespace tessera::hub {

HubOptions HubOptions::FromEnvironment(const std::function<const char*(const char*)>& env) {
  auto get = [&](const char* name) -> std::string {
    const char* v = env(name);
    return v ? std::string(v) : std::string();
  };
  HubOptions o;
  const std::string home = get("HOME");
  // The defaults of huggingface_hub's constants.py.
  std::string xdg_cache = get("XDG_CACHE_HOME");
  if (xdg_cache.empty()) xdg_cache = home + "/.cache";
  std::string hf_home = get("HF_HOME");
  if (hf_home.empty()) hf_home = xdg_cache + "/huggingface";
  o.cache_dir = get("HF_HUB_CACHE");
  if (o.cache_dir.empty()) o.cache_dir = get("HUGGINGFACE_HUB_CACHE");
  if (o.cache_dir.empty()) o.cache_dir = hf_home + "/hub";

  std::string endpoint = get("HF_ENDPOINT");
  if (!endpoint.empty()) o.endpoint = endpoint;
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();

  o.token = get("HF_TOKEN");
  if (o.token.empty()) o.token = get("HUGGING_FACE_HUB_TOKEN");
  if (o.token.empty()) {
    std::string path = get("HF_TOKEN_PATH");
    if (path.empty()) path = hf_home + "/token";
    std::ifstream in(path);
    std::getline(in, o.token);
  }
  while (!o.token.empty() &&
         (o.token.back() == '\n' || o.token.back() == '\r' || o.token.back() == ' '))
    o.token.pop_back();

  std::string offline = get("HF_HUB_OFFLINE");
  o.offline = offline == "1" || offline == "true" || offline == "TRUE" || offline == "yes" ||
              offline == "ON" || offline == "on";

  o.catalogue_file = get("TESSERA_MODELS_FILE");
  if (o.catalogue_file.empty()) {
    std::string xdg_config = get("XDG_CONFIG_HOME");
    if (xdg_config.empty() && !home.empty()) xdg_config = home + "/.config";
    if (!xdg_config.empty()) o.catalogue_file = xdg_config + "/tessera/models.json";
  }
  for (const char* v : {"CURL_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"})
    if (o.ca_bundle.empty()) o.ca_bundle = get(v);
  std::error_code ec;
  if (o.ca_bundle.empty() && !std::filesystem::exists("/etc/ssl/certs/ca-certificates.crt", ec)) {
    for (const char* f : {"/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem",
                          "/etc/pki/tls/cacert.pem", "/etc/ssl/cert.pem"})
      if (std::filesystem::exists(f, ec)) {
        o.ca_bundle = f;
        break;
      }
  }
  return o;
}

}  // namespace tessera::hub
