#include "agbot/errc.h"

namespace hmq::agbot {
namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "agbot"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok:
        return "ok";
      case errc::exchange_unavailable:
        return "exchange unavailable";
      case errc::not_found:
        return "not found in the exchange";
      case errc::exchange_rejected:
        return "exchange rejected the request";
      case errc::bad_response:
        return "unexpected response from the exchange";
      case errc::bad_version:
        return "not a version";
      case errc::bad_version_range:
        return "not a version range";
      case errc::no_matching_version:
        return "no published version matches the range";
      case errc::dependency_cycle:
        return "required services form a cycle";
      case errc::too_many_dependencies:
        return "too many required services";
      case errc::bad_config:
        return "bad configuration";
      case errc::store_failed:
        return "agreement store failed";
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

}  // namespace hmq::agbot
