#include "core/bus/credentials.h"

#include <fstream>

#include "core/crypto/crypto.h"

namespace hmq::core::bus {

result<std::string> read_secret_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return error{make_error_code(errc::connect_failed), "cannot read " + p.string()};
  std::string line;
  line.resize(4096);
  in.read(line.data(), static_cast<std::streamsize>(line.size()));
  line.resize(static_cast<size_t>(in.gcount()));
  if (auto nl = line.find_first_of("\r\n"); nl != std::string::npos) line.resize(nl);
  if (line.empty()) return error{make_error_code(errc::connect_failed), p.string() + " is empty"};
  return line;
}

result<void> apply_credentials(options& o, const credentials_flags& f) {
  if (!f.user.empty()) o.username = f.user;
  if (!f.password_file.empty()) {
    auto pw = read_secret_file(f.password_file);
    if (!pw) return pw.err();
    o.password = std::move(*pw);
  }
  if (!f.ca_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(f.ca_file, ec))
      return error{make_error_code(errc::bad_uri), "CA file " + f.ca_file.string() + " not found"};
    const std::string& u = o.broker_uri;
    if (u.rfind("tcp://", 0) == 0 || u.rfind("mqtt://", 0) == 0)
      return error{make_error_code(errc::bad_uri), "a CA file was given but the broker URI " + u +
                                                       " is not TLS: use mqtts:// or ssl://"};
    if (!o.tls) o.tls.emplace();
    o.tls->ca_file = f.ca_file.string();
  }
  return {};
}

namespace {

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// The 32-byte broker secret of broker username `username` holding `secret`.
result<crypto::bytes> broker_key(const std::string& username, std::string_view secret,
                                 crypto::kdf_cost cost) {
  const std::string salt_in = "hmq broker salt|" + username;
  const auto salt = crypto::generic_hash(bytes_of(salt_in), 16);
  return crypto::derive_key(secret, salt, 32, cost);
}

}  // namespace

result<user_identity> derive_user_identity(std::string_view org, std::string_view user,
                                           std::string_view password) {
  user_identity id;
  id.username = std::string(org) + "/" + std::string(user);
  auto key = broker_key(id.username, password, crypto::kdf_cost::interactive);
  if (!key) return key.err();
  id.password = crypto::to_base64(*key);
  id.inbox = crypto::to_hex(crypto::generic_hash(bytes_of("hmq inbox"), 16, *key));
  return id;
}

result<std::string> derive_machine_password(std::string_view mailbox, std::string_view token) {
  // Small-memory cost: the agent derives this at every start, on devices of any size.
  auto key = broker_key(std::string(mailbox), token, crypto::kdf_cost::small_memory);
  if (!key) return key.err();
  return crypto::to_base64(*key);
}

}  // namespace hmq::core::bus
