#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"

// Keys of the parties of a recording and what they can do with its envelopes: open them for
// `inspect` and re-seal them for `play --reseal`. Reads the key files the components write
// (core/crypto: one line of base64; <data-dir>/agent.key, agbot.key, exchange.key, 0600, each with
// a .pub next to it). Nothing here checks freshness or duplicates: a recording is old by design.
namespace hmq::tools::replay {

struct named_keypair {
  std::string name;  // file path relative to the keys directory
  core::crypto::box_keypair keys;
};

// Every box key pair (*.key, 32-byte secret) and public key (*.pub) found in a directory and
// its subdirectories (two levels, so a copy of several data dirs works). Ed25519 signing keys
// (64-byte secrets) are skipped: they never open an envelope.
class keyring {
 public:
  // Warnings (unreadable files, loose permissions) go to `warnings`; an empty keyring is not an
  // error here (the caller decides).
  static core::result<keyring> load(const std::filesystem::path& dir,
                                    std::vector<std::string>& warnings);
  void add(std::string name, core::crypto::box_keypair kp);
  void add_public(const core::crypto::public_key& pk);

  const std::vector<named_keypair>& secrets() const { return secrets_; }
  // The public key whose mailbox id is `mailbox`, if any key file holds it.
  const core::crypto::public_key* by_mailbox(const std::string& mailbox) const;

 private:
  std::vector<named_keypair> secrets_;
  std::map<std::string, core::crypto::public_key> mailboxes_;
};

// The clear-text fields of an Envelope (after the Verifier).
struct envelope_fields {
  uint8_t version = 0;
  core::crypto::public_key sender{};
  core::crypto::nonce nonce{};
  std::vector<uint8_t> ciphertext;
};
core::result<envelope_fields> parse_envelope(std::span<const uint8_t> payload);

// A decrypted envelope: the verified Message bytes and which key opened it.
struct opened_envelope {
  envelope_fields env;
  core::crypto::public_key recipient{};
  std::vector<uint8_t> message;  // verified Message buffer
  size_t key_index = 0;          // into keyring::secrets()
  bool by_recipient = true;      // opened with the recipient's key, else with the sender's
};

// Tries every secret key: as the recipient, and as the sender when the topic is a mailbox
// (…/mb/<id>) whose public key is known. crypto_box is symmetric in the pair, so either side's
// secret key opens (and re-seals) the box.
core::result<opened_envelope> open_envelope(const keyring& keys, const std::string& topic,
                                            std::span<const uint8_t> payload);

// The same Message with a fresh random id and sent_ms = clock's now, sealed again from the
// original sender to the original recipient with a fresh nonce. The recipient cannot tell it
// from a message the sender sent now.
core::result<std::vector<uint8_t>> reseal(const keyring& keys, const opened_envelope& o,
                                          const core::loop::clock& clock);

}  // namespace hmq::tools::replay
