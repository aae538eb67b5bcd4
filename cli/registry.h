#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/common/result.h"

// Image digest resolution at publish time (Docker Registry HTTP API v2, libcurl): what the
// publisher signs pins the exact image, so a tag moved later cannot change what nodes run.
namespace hmq::cli {

using core::result;

enum class registry_errc {
  ok = 0,
  bad_reference = 1,    // image reference cannot be parsed
  unreachable = 2,      // connect/TLS/timeout failure
  refused = 3,          // 401/403: credentials missing or wrong
  not_found = 4,        // 404: no such repository or tag
  bad_answer = 5,       // other status, or no Docker-Content-Digest / malformed digest
  bad_credentials = 6,  // -r value or docker config cannot be parsed
};
const std::error_category& registry_category();
std::error_code make_error_code(registry_errc e);

// Credentials for one registry host ("127.0.0.1:5000", "registry.example.com").
struct registry_credentials {
  std::string registry;
  std::string username;
  std::string token;
};

// Horizon's -r "registry:user:token" (the registry may carry a port: "host:5000:user:token").
result<registry_credentials> parse_registry_flag(std::string_view s);

// ~/.docker/config.json style {"auths": {"host": {"auth": base64("user:pass")}}} (also
// "username"/"password" entries). A missing file gives an empty list.
result<std::vector<registry_credentials>> load_docker_config(const std::filesystem::path& p);
// $DOCKER_CONFIG/config.json or ~/.docker/config.json.
std::filesystem::path default_docker_config_path();

struct image_reference {
  std::string registry;    // host[:port]; "registry-1.docker.io" for Docker Hub names
  std::string repository;  // "library/busybox", "org/app"
  std::string tag;         // "latest" when none given
  std::string digest;      // "sha256:..." when given
};
result<image_reference> parse_image_reference(std::string_view image);

// Plain http for localhost and 127.0.0.0/8 (as Docker's insecure default), https elsewhere.
std::string registry_base_url(std::string_view registry);

// Resolve image (without digest) to its manifest digest: HEAD, then GET if HEAD gives no
// Docker-Content-Digest. Basic auth from the first matching credentials.
result<std::string> resolve_digest(std::string_view image,
                                   const std::vector<registry_credentials>& creds,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace hmq::cli

template <>
struct std::is_error_code_enum<hmq::cli::registry_errc> : std::true_type {};
