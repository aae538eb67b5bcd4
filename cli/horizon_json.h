#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/common/result.h"
#include "schema/types_generated.h"

// Open Horizon's file formats (service definition, pattern) <-> the FlatBuffers object API.
// Users keep their hzn files; the CLI reads them with Horizon's $VAR substitution and field
// names, and `-o json` prints the same format back. Every error names the file and the field.
namespace hmq::cli {

namespace fb = ::hmq::wire::fb;
using core::result;

enum class horizon_errc {
  ok = 0,
  bad_json = 1,        // not parseable JSON (message has line and column)
  invalid_field = 2,   // wrong type or value; message names the field
  missing_field = 3,   // a required field is absent or empty
  unset_variable = 4,  // $VAR / ${VAR} not set in the environment
  io_error = 5,        // file cannot be read
};
const std::error_category& horizon_category();
std::error_code make_error_code(horizon_errc e);

// Environment look-up for $VAR substitution; tests inject a map.
using env_lookup = std::function<std::optional<std::string>(std::string_view name)>;
std::optional<std::string> process_env(std::string_view name);

// Horizon's substitution: $NAME and ${NAME} (NAME = [A-Za-z_][A-Za-z0-9_]*) are replaced by the
// variable's value; a '$' not followed by a name is kept. An unset variable is an error naming
// it and the line it is on. `source` names the file in messages.
result<std::string> substitute_env(std::string_view text, std::string_view source,
                                   const env_lookup& env = process_env);

// A parsed service definition: the Service without deployment bytes (filled at publish) and
// the Deployment it describes. Fields Horizon has but Horizon-MQ ignores (documentation,
// clusterDeployment, ...) become warnings, as do unknown fields.
struct horizon_service {
  fb::ServiceT service;
  fb::DeploymentT deployment;
  std::vector<std::string> warnings;
};

struct horizon_pattern {
  fb::PatternT pattern;
  std::vector<std::string> warnings;
};

// Parse file text (after substitution). `source` (e.g. "service.definition.json") prefixes
// every error message.
result<horizon_service> parse_service(std::string_view text, std::string_view source,
                                      const env_lookup& env = process_env);
result<horizon_pattern> parse_pattern(std::string_view text, std::string_view source,
                                      const env_lookup& env = process_env);

// Read a file; errors are horizon_errc::io_error naming the path.
result<std::string> read_text_file(const std::filesystem::path& p);

// Back to Horizon's format. The deployment is printed as an object (Horizon accepts both);
// `deployment` null prints an empty object.
nlohmann::json service_to_json(const fb::ServiceT& s, const fb::DeploymentT* deployment);
nlohmann::json pattern_to_json(const fb::PatternT& p);
// The userInput array of a pattern or node (serviceOrgid, serviceUrl, ..., inputs[{name, value}]).
nlohmann::json user_inputs_to_json(
    const std::vector<std::unique_ptr<fb::ServiceUserInputT>>& inputs);
nlohmann::json deployment_to_json(const fb::DeploymentT& d);

// The signed byte form of a deployment (a finished "Deployment" FlatBuffer).
std::vector<uint8_t> serialize_deployment(const fb::DeploymentT& d);
// Verify and unpack a deployment buffer (bytes from the exchange are untrusted).
result<fb::DeploymentT> parse_deployment_buffer(std::span<const uint8_t> bytes);

// "repo/name:tag@sha256:..." -> {reference without digest, digest or ""}.
struct image_ref {
  std::string name_tag;
  std::string digest;
};
image_ref split_image_digest(std::string_view image);

std::string_view sharing_name(fb::Sharing s);

}  // namespace hmq::cli

template <>
struct std::is_error_code_enum<hmq::cli::horizon_errc> : std::true_type {};
