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

// The broker identity of exchange user org/user (docs/security.md "Operator identities"). The
// exchange provisions it when the user's password is set; hmq and hmq-replay derive the same
// values from the credentials they are given, so nobody hands broker secrets around.
//   username: "org/user";
//   password: base64 of Argon2id(password, salt = BLAKE2b-128("hmq broker salt|org/user")),
//             32 bytes: never the exchange password, and a leaked dynamic-security.json costs
//             an Argon2id per guess before its own PBKDF2;
//   inbox:    hex of BLAKE2b-128 keyed with that secret: the opaque topic level the exchange
//             answers this user on (hmq/v1/r/<inbox>/<mailbox>); unguessable without the secret.
struct user_identity {
  std::string username;
  std::string password;
  std::string inbox;
};
result<user_identity> derive_user_identity(std::string_view org, std::string_view user,
                                           std::string_view password);

// The broker password of a node or agbot (docs/security.md "Identities"), the same derivation
// with username = its mailbox id and secret = its exchange token: base64 of Argon2id(token,
// salt = BLAKE2b-128("hmq broker salt|<mailbox>")), 32 bytes, at crypto::kdf_cost::small_memory
// (7 MiB, 5 passes: the agent pays it at every start). The exchange provisions it; the
// agent and the agbot derive it from the token they hold. The broker never holds anything that
// logs in to the exchange.
result<std::string> derive_machine_password(std::string_view mailbox, std::string_view token);

}  // namespace hmq::core::bus
