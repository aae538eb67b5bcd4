#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exchange/rpc_error.h"

// Field checks for every request the exchange accepts: sizes, character sets, versions and
// ranges, signed deployments. Each returns the first offending field as invalid_argument.
// Pure functions: no store, no state.
namespace hmq::exchange {

inline std::string str(const flatbuffers::String* s) {
  return s ? s->str() : std::string();
}

constexpr size_t max_id = 128;
constexpr size_t max_name = 256;
constexpr size_t max_text = 4096;
constexpr size_t max_url = 1024;
constexpr size_t max_secret = 1024;
constexpr size_t max_items = 256;
constexpr size_t max_deployment = 128 * 1024;

bool id_char(char c);
bool digit(char c);
bool version_ok(std::string_view s);
// A mailbox id as crypto::mailbox_id makes them: 16 characters of lowercase base32.
bool valid_mailbox(std::string_view m);

step check_id(const std::string& field, std::string_view s);
step check_text(const std::string& field, std::string_view s, size_t max, bool required = false);
step check_url(const std::string& field, std::string_view s);
step check_version(const std::string& field, std::string_view s);
// Horizon's versionRange: "" (any), "1.0.0" (at least), "[1.0.0,2.0.0)", "[1.0.0,INFINITY)".
step check_version_range(const std::string& field, std::string_view s);
step check_arch(const std::string& field, std::string_view s, bool allow_any = false);
step check_count(const std::string& field, size_t n, size_t max = max_items);
step check_secret(const std::string& field, std::string_view s, bool required);
// "org/name"
step check_qualified(const std::string& field, std::string_view s);
step check_service_user_inputs(const std::string& field,
                               const std::vector<std::unique_ptr<fb::ServiceUserInputT>>& v);
// The deployment is verified as a Deployment buffer, then its signature against publisher_key.
step check_deployment(const fb::ServiceT& s);
step check_service(const fb::ServiceT& s);
step check_pattern(const fb::PatternT& p);
step check_agbot_pattern(const std::string& field, const fb::AgbotPatternT& p);

}  // namespace hmq::exchange
