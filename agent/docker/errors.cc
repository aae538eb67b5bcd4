#include "agent/docker/errors.h"

#include <string>

namespace hmq::agent::docker {
namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "docker"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok:
        return "ok";
      case errc::transport:
        return "cannot talk to the Docker Engine";
      case errc::api:
        return "Docker Engine error";
      case errc::not_found:
        return "not found";
      case errc::conflict:
        return "conflict";
      case errc::auth_failed:
        return "registry authentication failed";
      case errc::pull_failed:
        return "image pull failed";
      case errc::bad_response:
        return "unexpected answer from the Docker Engine";
      case errc::too_large:
        return "answer from the Docker Engine too large";
      case errc::stopped:
        return "docker client stopped";
      case errc::bad_request:
        return "request cannot be sent to the Docker Engine";
    }
    return "unknown";
  }
};

}  // namespace

const std::error_category& category() {
  static const category_impl c;
  return c;
}
std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), category()};
}

}  // namespace hmq::agent::docker
