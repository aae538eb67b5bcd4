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

namespace {

// What a claim seals: binds the mailbox and the broker password of the token it is made for.
crypto::bytes claim_statement(std::string_view mailbox, std::string_view machine_password) {
  const std::string what = "hmq claim|" + std::string(mailbox);
  return crypto::generic_hash(bytes_of(what), 32, bytes_of(machine_password));
}

error claim_refused(std::string why) {
  return error{make_error_code(errc::not_authorized), std::move(why)};
}

}  // namespace

std::string make_mailbox_claim(const crypto::box_keypair& mine, const crypto::public_key& exchange,
                               std::string_view machine_password) {
  const auto n = crypto::random_nonce();
  const auto boxed = crypto::box_seal(
      claim_statement(crypto::mailbox_id(mine.pk), machine_password), n, exchange, mine.sk);
  crypto::bytes raw(mine.pk.begin(), mine.pk.end());
  raw.insert(raw.end(), n.begin(), n.end());
  raw.insert(raw.end(), boxed.begin(), boxed.end());
  return crypto::to_base64(raw);
}

result<void> open_mailbox_claim(std::string_view claim, std::string_view mailbox,
                                const crypto::secret& exchange_sk,
                                std::string_view machine_password) {
  constexpr size_t claim_size =
      crypto::public_key_size + crypto::nonce_size + crypto::mac_size + 32;
  auto raw = crypto::from_base64(claim);
  if (!raw || raw->size() != claim_size)
    return claim_refused("not a mailbox claim: copy the --claim value the agent or agbot printed");
  crypto::public_key pk{};
  std::copy_n(raw->begin(), pk.size(), pk.begin());
  if (!crypto::usable_box_key(pk) || crypto::mailbox_id(pk) != mailbox)
    return claim_refused("the claim was made by another key than mailbox " + std::string(mailbox) +
                         "'s");
  crypto::nonce n{};
  std::copy_n(raw->begin() + pk.size(), n.size(), n.begin());
  auto plain = crypto::box_open(std::span(*raw).subspan(pk.size() + n.size()), n, pk, exchange_sk);
  if (!plain)
    return claim_refused(
        "the claim does not open with this exchange's key: it was made for another exchange "
        "(check the agent's --exchange-key)");
  if (!crypto::equal(*plain, claim_statement(mailbox, machine_password)))
    return claim_refused(
        "the claim was made for another token: give the token the agent's password file holds");
  return {};
}

std::string own_mailbox_claim(const options& o, const crypto::box_keypair& mine,
                              const crypto::public_key& exchange) {
  if (o.username != crypto::mailbox_id(mine.pk) || o.password.empty()) return {};
  return make_mailbox_claim(mine, exchange, o.password);
}

std::string enrolment_command(std::string_view kind, std::string_view mailbox,
                              std::string_view claim) {
  std::string cmd =
      "hmq exchange " + std::string(kind) + " create ID:TOKEN --mailbox " + std::string(mailbox);
  if (!claim.empty()) cmd += " --claim " + std::string(claim);
  return cmd;
}

}  // namespace hmq::core::bus
