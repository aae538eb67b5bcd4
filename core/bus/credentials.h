#pragma once

#include <filesystem>
#include <string>

#include "core/bus/client.h"
#include "core/common/result.h"
#include "core/crypto/crypto.h"

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

// A mailbox claim (docs/security.md "Mailbox ownership"): the holder of a mailbox's secret key
// says "the party whose token gives broker password P may have my mailbox", sealed to the
// exchange. The agent and the agbot print it next to their mailbox; `hmq exchange node|agbot
// create ID:TOKEN --mailbox M --claim C` hands it to the exchange, which binds M only when C
// opens with M's key and names the password of that TOKEN. Nobody who lacks the key can make
// one, and one made for another token is worthless.
//   claim = base64(pk(32) || nonce(24) || crypto_box(BLAKE2b-256 keyed with P of "hmq claim|M")).
// `machine_password` is derive_machine_password(M, token).
std::string make_mailbox_claim(const crypto::box_keypair& mine, const crypto::public_key& exchange,
                               std::string_view machine_password);
// errc::not_authorized with a sentence saying what is wrong: not a claim, made by another key
// than `mailbox`'s, not for this exchange, or for another token.
result<void> open_mailbox_claim(std::string_view claim, std::string_view mailbox,
                                const crypto::secret& exchange_sk,
                                std::string_view machine_password);

// The claim an agent or agbot prints for itself: made only when `o` connects as the party's own
// mailbox with a derived password (its token is then known); "" otherwise.
std::string own_mailbox_claim(const options& o, const crypto::box_keypair& mine,
                              const crypto::public_key& exchange);
// What an agent or agbot tells its operator while the broker refuses it: the command that
// enrols it, "hmq exchange <kind> create ID:TOKEN --mailbox M --claim C" (no --claim when
// `claim` is empty; the exchange will then ask for one).
std::string enrolment_command(std::string_view kind, std::string_view mailbox,
                              std::string_view claim);

}  // namespace hmq::core::bus
