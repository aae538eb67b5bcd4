#pragma once

#include <filesystem>
#include <string>

#include "core/bus/client.h"
#include "core/common/result.h"

// Broker credentials and TLS trust as every component takes them on its command line
// (--mqtt-user, --mqtt-password-file, --ca-file; docs/security.md), applied to bus::options.
namespace hmq::core::bus {

struct credentials_flags {
  std::string user;                     // broker username ("" = none)
  std::filesystem::path password_file;  // first line is the password; owner-only file advised
  std::filesystem::path ca_file;        // CA bundle that signed the broker's certificate
};

// Reads the password file (first line, trailing CR/LF dropped; at most 4 KiB) and fills
// username, password and tls->ca_file. A CA file also makes tcp:// and mqtt:// URIs an error:
// somebody who configured trust expects TLS, and silently sending the password in clear over
// TCP would be the worst outcome.
result<void> apply_credentials(options& o, const credentials_flags& f);

// The first line of a secret file (same rules), e.g. a node token file.
result<std::string> read_secret_file(const std::filesystem::path& p);

}  // namespace hmq::core::bus
