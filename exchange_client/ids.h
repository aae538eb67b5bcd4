#pragma once

#include <optional>
#include <string>
#include <string_view>

// Identifiers of exchange resources, shared by the exchange, its client library and the CLI so
// every party derives the same keys.
namespace hmq::exchange_client {

// Horizon's service id: the url without scheme, '/' and ':' replaced by '-', then
// "_<version>_<arch>". "https://example.com/svc/gps", "1.0.0", "amd64" ->
// "example.com-svc-gps_1.0.0_amd64".
inline std::string service_id(std::string_view url, std::string_view version,
                              std::string_view arch) {
  std::string_view u = url;
  if (auto p = u.find("://"); p != std::string_view::npos) u.remove_prefix(p + 3);
  std::string id;
  id.reserve(u.size() + version.size() + arch.size() + 2);
  for (char c : u) id.push_back(c == '/' || c == ':' ? '-' : c);
  id.append("_").append(version).append("_").append(arch);
  return id;
}

// "org/name" -> {org, name}; nullopt unless both parts are non-empty and there is one '/'.
struct qualified_name {
  std::string org;
  std::string name;
  std::string str() const { return org + "/" + name; }
};
inline std::optional<qualified_name> split_qualified(std::string_view s) {
  auto p = s.find('/');
  if (p == std::string_view::npos || p == 0 || p + 1 == s.size()) return std::nullopt;
  if (s.find('/', p + 1) != std::string_view::npos) return std::nullopt;
  return qualified_name{std::string(s.substr(0, p)), std::string(s.substr(p + 1))};
}

}  // namespace hmq::exchange_client
