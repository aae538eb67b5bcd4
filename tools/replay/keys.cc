#include "tools/replay/keys.h"

#include <algorithm>

#include "core/wire/codec.h"

namespace hmq::tools::replay {

namespace crypto = core::crypto;
namespace fb = ::hmq::wire::fb;
using core::error;
using core::result;

namespace {

error bad(std::string detail) {
  return error{make_error_code(crypto::errc::bad_key), std::move(detail)};
}

// "…/mb/<id>" or "…/up/<id>" (a mailbox or an agbot's uplink) → "<id>", else "".
std::string mailbox_of(const std::string& topic) {
  for (const char* level : {"/mb/", "/up/"}) {
    auto p = topic.rfind(level);
    if (p == std::string::npos) continue;
    std::string id = topic.substr(p + 4);
    return id.find('/') == std::string::npos ? id : "";
  }
  return "";
}

}  // namespace

void keyring::add(std::string name, crypto::box_keypair kp) {
  add_public(kp.pk);
  secrets_.push_back({std::move(name), std::move(kp)});
}

void keyring::add_public(const crypto::public_key& pk) {
  mailboxes_[crypto::mailbox_id(pk)] = pk;
}

const crypto::public_key* keyring::by_mailbox(const std::string& mailbox) const {
  auto it = mailboxes_.find(mailbox);
  return it == mailboxes_.end() ? nullptr : &it->second;
}

result<keyring> keyring::load(const std::filesystem::path& dir,
                              std::vector<std::string>& warnings) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return error{make_error_code(crypto::errc::io_error), dir.string() + " is not a directory"};
  }
  keyring k;
  std::vector<fs::path> files;
  for (auto it =
           fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 2) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());  // stable order: the first key that opens is reported
  for (const auto& f : files) {
    const std::string name = fs::relative(f, dir, ec).string();
    if (f.extension() == ".key") {
      auto sk = crypto::read_secret_key_file(f);
      if (!sk) {
        warnings.push_back(name + ": " + sk.err().message());
        continue;
      }
      if (sk->size() != crypto::box_secret_key_size) continue;  // a signing key
      auto kp = crypto::box_keypair::from_secret(sk->view());
      if (!kp) {
        warnings.push_back(name + ": " + kp.err().message());
        continue;
      }
      k.add(name, std::move(*kp));
    } else if (f.extension() == ".pub") {
      auto pk = crypto::read_public_key_file(f);
      if (!pk || pk->size() != crypto::public_key_size) continue;
      crypto::public_key p{};
      std::copy(pk->begin(), pk->end(), p.begin());
      k.add_public(p);
    }
  }
  return k;
}

result<envelope_fields> parse_envelope(std::span<const uint8_t> payload) {
  flatbuffers::Verifier v(payload.data(), payload.size());
  if (payload.size() < 8 || !fb::VerifyEnvelopeBuffer(v)) return bad("not an envelope");
  const auto* e = fb::GetEnvelope(payload.data());
  envelope_fields f;
  f.version = e->version();
  if (!e->sender_key() || e->sender_key()->size() != crypto::public_key_size)
    return bad("bad sender key");
  if (!e->nonce() || e->nonce()->size() != crypto::nonce_size) return bad("bad nonce");
  std::copy(e->sender_key()->begin(), e->sender_key()->end(), f.sender.begin());
  std::copy(e->nonce()->begin(), e->nonce()->end(), f.nonce.begin());
  if (e->ciphertext()) f.ciphertext.assign(e->ciphertext()->begin(), e->ciphertext()->end());
  return f;
}

result<opened_envelope> open_envelope(const keyring& keys, const std::string& topic,
                                      std::span<const uint8_t> payload) {
  auto env = parse_envelope(payload);
  if (!env) return env.err();
  opened_envelope o;
  o.env = std::move(*env);
  auto accept = [&](crypto::bytes plain) -> bool {
    flatbuffers::Verifier v(plain.data(), plain.size());
    if (!fb::VerifyMessageBuffer(v)) return false;
    o.message = std::move(plain);
    return true;
  };
  const auto& secrets = keys.secrets();
  for (size_t i = 0; i < secrets.size(); ++i) {
    auto plain = crypto::box_open(o.env.ciphertext, o.env.nonce, o.env.sender, secrets[i].keys.sk);
    if (plain && accept(std::move(*plain))) {
      o.key_index = i;
      o.recipient = secrets[i].keys.pk;
      o.by_recipient = true;
      return o;
    }
  }
  // We may hold the sender's key instead: the recipient's public key comes from the topic.
  if (const auto* rcpt = keys.by_mailbox(mailbox_of(topic))) {
    for (size_t i = 0; i < secrets.size(); ++i) {
      if (!crypto::equal(secrets[i].keys.pk, o.env.sender)) continue;
      auto plain = crypto::box_open(o.env.ciphertext, o.env.nonce, *rcpt, secrets[i].keys.sk);
      if (plain && accept(std::move(*plain))) {
        o.key_index = i;
        o.recipient = *rcpt;
        o.by_recipient = false;
        return o;
      }
    }
  }
  return error{make_error_code(crypto::errc::decrypt_failed), "no key opens it"};
}

result<std::vector<uint8_t>> reseal(const keyring& keys, const opened_envelope& o,
                                    const core::loop::clock& clock) {
  fb::MessageT m;
  fb::GetMessage(o.message.data())->UnPackTo(&m);
  m.id = 0;       // build_message draws a fresh random id
  m.sent_ms = 0;  // and stamps the clock's now
  auto plain = core::wire::build_message(std::move(m), clock);
  const auto& own = keys.secrets().at(o.key_index).keys;
  // The box key is X25519(own secret, the other side's public key): the same either way round.
  const crypto::public_key& peer = o.by_recipient ? o.env.sender : o.recipient;
  const crypto::nonce n = crypto::random_nonce();
  auto boxed = crypto::box_seal(plain, n, peer, own.sk);
  if (boxed.empty()) return bad("unusable peer key");
  flatbuffers::FlatBufferBuilder b(boxed.size() + 128);
  auto sender = b.CreateVector(o.env.sender.data(), o.env.sender.size());
  auto nonce = b.CreateVector(n.data(), n.size());
  auto ct = b.CreateVector(boxed.data(), boxed.size());
  fb::FinishEnvelopeBuffer(b, fb::CreateEnvelope(b, o.env.version, sender, nonce, ct));
  return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

}  // namespace hmq::tools::replay
