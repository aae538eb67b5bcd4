#include "cli/registry.h"

#include <curl/curl.h>

#include <cctype>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/horizon_json.h"
#include "core/crypto/crypto.h"

namespace hmq::cli {

namespace {

class registry_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "registry"; }
  std::string message(int c) const override {
    // Indexed by registry_errc (its values run from 0 without gaps).
    static constexpr const char* messages[] = {"ok",
                                               "bad image reference",
                                               "registry unreachable",
                                               "registry refused the credentials",
                                               "image not found",
                                               "unexpected registry answer",
                                               "bad registry credentials"};
    if (c < 0 || static_cast<size_t>(c) >= std::size(messages)) return "unknown";
    return messages[c];
  }
};

core::error make_error(registry_errc c, std::string detail) {
  return {make_error_code(c), std::move(detail)};
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "https://index.docker.io/v1/" -> "index.docker.io"; "127.0.0.1:5000" stays.
std::string host_of(std::string_view key) {
  if (auto p = key.find("://"); p != std::string_view::npos) key.remove_prefix(p + 3);
  if (auto p = key.find('/'); p != std::string_view::npos) key = key.substr(0, p);
  return lower(key);
}

bool same_registry(std::string_view a, std::string_view b) {
  auto ha = host_of(a), hb = host_of(b);
  auto hub = [](const std::string& h) {
    return h == "docker.io" || h == "index.docker.io" || h == "registry-1.docker.io";
  };
  return ha == hb || (hub(ha) && hub(hb));
}

struct curl_global {
  curl_global() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~curl_global() { curl_global_cleanup(); }
};

struct response {
  long status = 0;
  std::string digest;
  std::string www_authenticate;
  std::string body;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<response*>(user);
  std::string_view line(data, size * n);
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  auto name = lower(line.substr(0, colon));
  auto value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
    value.remove_suffix(1);
  if (name == "docker-content-digest") r->digest = std::string(value);
  if (name == "www-authenticate") r->www_authenticate = std::string(value);
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<response*>(user);
  // A manifest is small; a registry sending megabytes is not one we want to read.
  if (r->body.size() + size * n > 4 * 1024 * 1024) return 0;
  r->body.append(data, size * n);
  return size * n;
}

result<response> fetch(const std::string& url, bool head, const registry_credentials* cred,
                       std::chrono::milliseconds timeout) {
  static curl_global global;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> h(curl_easy_init(), curl_easy_cleanup);
  if (!h) return make_error(registry_errc::unreachable, "libcurl could not start");
  response r;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers,
                              "Accept: application/vnd.docker.distribution.manifest.v2+json, "
                              "application/vnd.docker.distribution.manifest.list.v2+json, "
                              "application/vnd.oci.image.index.v1+json, "
                              "application/vnd.oci.image.manifest.v1+json");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> hdr_guard(headers,
                                                                        curl_slist_free_all);
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = h.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOBODY, head ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (cred) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, cred->username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, cred->token.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return make_error(
        registry_errc::unreachable,
        url + ": " + (errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc))));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

bool valid_digest(std::string_view d) {
  if (d.rfind("sha256:", 0) != 0 || d.size() != 7 + 64) return false;
  for (char c : d.substr(7)) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) ||
        std::isupper(static_cast<unsigned char>(c)))
      return false;
  }
  return true;
}

}  // namespace

const std::error_category& registry_category() {
  static const registry_category_impl c;
  return c;
}
std::error_code make_error_code(registry_errc e) {
  return {static_cast<int>(e), registry_category()};
}

result<registry_credentials> parse_registry_flag(std::string_view s) {
  auto last = s.rfind(':');
  if (last == std::string_view::npos || last == 0) {
    return make_error(registry_errc::bad_credentials,
                      "-r '" + std::string(s) + "': expected registry:user:token");
  }
  auto second = s.rfind(':', last - 1);
  if (second == std::string_view::npos || second == 0 || second + 1 == last ||
      last + 1 == s.size()) {
    return make_error(registry_errc::bad_credentials, "-r: expected registry:user:token");
  }
  return registry_credentials{std::string(s.substr(0, second)),
                              std::string(s.substr(second + 1, last - second - 1)),
                              std::string(s.substr(last + 1))};
}

std::filesystem::path default_docker_config_path() {
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d)
    return std::filesystem::path(d) / "config.json";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : "/") / ".docker" / "config.json";
}

result<std::vector<registry_credentials>> load_docker_config(const std::filesystem::path& p) {
  std::error_code ec;
  if (!std::filesystem::exists(p, ec)) return std::vector<registry_credentials>{};
  auto text = read_text_file(p);
  if (!text) return make_error(registry_errc::bad_credentials, text.err().detail);
  std::vector<registry_credentials> out;
  try {
    auto j = nlohmann::json::parse(*text);
    if (!j.contains("auths") || !j["auths"].is_object()) return out;
    for (auto it = j["auths"].begin(); it != j["auths"].end(); ++it) {
      const auto& e = it.value();
      registry_credentials c;
      c.registry = host_of(it.key());
      if (e.contains("auth") && e["auth"].is_string() && !e["auth"].get<std::string>().empty()) {
        auto raw = core::crypto::from_base64(e["auth"].get<std::string>());
        if (!raw)
          return make_error(registry_errc::bad_credentials,
                            p.string() + ": auths." + it.key() + ".auth is not base64");
        std::string up(raw->begin(), raw->end());
        auto colon = up.find(':');
        if (colon == std::string::npos) {
          return make_error(registry_errc::bad_credentials,
                            p.string() + ": auths." + it.key() + ".auth is not user:password");
        }
        c.username = up.substr(0, colon);
        c.token = up.substr(colon + 1);
      } else if (e.contains("username") && e.contains("password")) {
        c.username = e["username"].get<std::string>();
        c.token = e["password"].get<std::string>();
      } else {
        continue;  // credential helpers are not supported; the registry will say 401 if needed
      }
      out.push_back(std::move(c));
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(registry_errc::bad_credentials, p.string() + ": " + e.what());
  }
  return out;
}

result<image_reference> parse_image_reference(std::string_view image) {
  auto bad = [&](const std::string& why) {
    return make_error(registry_errc::bad_reference, "image '" + std::string(image) + "': " + why);
  };
  if (image.empty()) return bad("empty");
  image_reference r;
  std::string_view rest = image;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    r.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!valid_digest(r.digest)) return bad("digest must be sha256: and 64 lowercase hex digits");
  }
  // Registry: the first component when it looks like a host (has '.' or ':' or is localhost).
  auto slash = rest.find('/');
  if (slash != std::string_view::npos) {
    auto first = rest.substr(0, slash);
    if (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
        first == "localhost") {
      r.registry = std::string(first);
      rest = rest.substr(slash + 1);
    }
  }
  if (r.registry.empty()) r.registry = "registry-1.docker.io";
  // Tag: after the last ':' that follows the last '/'.
  auto last_slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    r.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (r.tag.empty()) return bad("empty tag");
  }
  if (r.tag.empty()) r.tag = "latest";
  if (rest.empty()) return bad("empty repository");
  for (char c : rest) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
          c == '/')) {
      return bad("repository may contain only lowercase letters, digits, '.', '_', '-' and '/'");
    }
  }
  r.repository = std::string(rest);
  if (r.registry == "registry-1.docker.io" && r.repository.find('/') == std::string::npos) {
    r.repository = "library/" + r.repository;
  }
  return r;
}

std::string registry_base_url(std::string_view registry) {
  std::string host(registry);
  std::string bare = host;
  if (!bare.empty() && bare.front() == '[') {
    bare = bare.substr(1, bare.find(']') - 1);
  } else if (auto c = bare.rfind(':'); c != std::string::npos) {
    bare = bare.substr(0, c);
  }
  bool local = bare == "localhost" || bare.rfind("127.", 0) == 0 || bare == "::1";
  return (local ? "http://" : "https://") + host;
}

result<std::string> resolve_digest(std::string_view image,
                                   const std::vector<registry_credentials>& creds,
                                   std::chrono::milliseconds timeout) {
  auto ref = parse_image_reference(image);
  if (!ref) return ref.err();
  if (!ref->digest.empty()) return ref->digest;
  const registry_credentials* cred = nullptr;
  for (const auto& c : creds) {
    if (same_registry(c.registry, ref->registry)) {
      cred = &c;
      break;
    }
  }
  std::string url =
      registry_base_url(ref->registry) + "/v2/" + ref->repository + "/manifests/" + ref->tag;
  response last;
  for (bool head : {true, false}) {
    auto r = fetch(url, head, cred, timeout);
    if (!r) {
      return make_error(registry_errc::unreachable, "cannot reach registry " + ref->registry +
                                                        " for image '" + std::string(image) +
                                                        "': " + r.err().detail);
    }
    last = std::move(r).value();
    if (last.status == 401 || last.status == 403) {
      std::string hint = cred ? "the credentials for " + ref->registry + " were refused"
                              : "no credentials for " + ref->registry + " (give -r " +
                                    ref->registry + ":user:token or log in with docker)";
      if (last.www_authenticate.rfind("Bearer", 0) == 0)
        hint += "; token (Bearer) authentication is not supported yet";
      return make_error(registry_errc::refused, "registry " + ref->registry + " refused image '" +
                                                    std::string(image) + "' (HTTP " +
                                                    std::to_string(last.status) + "): " + hint);
    }
    if (last.status == 404) {
      return make_error(registry_errc::not_found,
                        "image '" + std::string(image) + "' not found in registry " +
                            ref->registry + " (" + ref->repository + ":" + ref->tag + ")");
    }
    if (last.status == 200 && !last.digest.empty()) break;
  }
  if (last.status != 200) {
    return make_error(registry_errc::bad_answer, "registry " + ref->registry + " answered HTTP " +
                                                     std::to_string(last.status) + " for image '" +
                                                     std::string(image) + "'");
  }
  if (!valid_digest(last.digest)) {
    return make_error(registry_errc::bad_answer,
                      "registry " + ref->registry + " gave no valid Docker-Content-Digest for '" +
                          std::string(image) + "' (got '" + last.digest + "')");
  }
  return last.digest;
}

}  // namespace hmq::cli
