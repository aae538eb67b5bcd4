#pragma once

// What the agbot fuzz targets share (agbot_message_fuzz, exchange_event_fuzz): every input starts
// from the same state, an agbot engine (in-memory agreement store, manual scheduler, the fake
// exchange and outbox of tests/support/agbot_fakes.h) serving acme/gps that has just proposed
// agreement 000…01 to node acme/n1. Fixed keys (constant seeds) and a fixed agreement id, so
// the seed corpora can name them; the sender of the fuzzed message is the node or the exchange.
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "agbot/agreement_store.h"
#include "agbot/engine.h"
#include "core/crypto/crypto.h"
#include "core/log/log.h"
#include "core/loop/loop.h"
#include "tests/fuzz/fuzz_message.h"
#include "tests/support/agbot_fakes.h"

namespace hmq::agbot::fuzz {
namespace {  // the fakes it holds are in one (tests/support/agbot_fakes.h)

namespace crypto = core::crypto;

inline const crypto::public_key& node_key() {
  static const crypto::public_key k = [] {
    constexpr std::array<uint8_t, 32> seed = {'h', 'm', 'q', '-', 'f', 'u', 'z', 'z', '-', 'a', 'g',
                                              'b', 'o', 't', '-', 'n', 'o', 'd', 'e', '-', 's', 'e',
                                              'e', 'd', '-', '0', '0', '0', '0', '0', '0', '1'};
    return crypto::box_keypair::from_secret(seed).value().pk;
  }();
  return k;
}
inline const crypto::public_key& xkey() {
  static const crypto::public_key k = key_of(0xee);
  return k;
}
inline const std::string& agreement_1() {
  static const std::string id = std::string(31, '0') + "1";
  return id;
}

struct world {
  core::loop::manual_scheduler loop;
  fake_exchange x;
  fake_outbox out;
  std::unique_ptr<agreement_store> store;
  std::unique_ptr<engine> eng;
  uint32_t next_id = 0;

  world() {
    static const bool quiet = core::log::set_level("off");  // logging would dominate the run
    (void)quiet;
    auto s = agreement_store::open_memory();
    if (!s) __builtin_trap();
    store = std::make_unique<agreement_store>(std::move(*s));
    gps_world(x);
    add_gps_node(x, "n1", node_key());
    engine_config c;
    c.org = "acme";
    c.id = "ab1";
    c.exchange_key = xkey();
    eng = std::make_unique<engine>(loop, c, x, out, *store, [this] {
      std::string id(32, '0');
      const std::string n = std::to_string(++next_id);
      id.replace(32 - n.size(), n.size(), n);
      return id;
    });
    eng->start();
    loop.run_pending();
    if (out.of(fb::Body::Proposal).empty()) __builtin_trap();  // the state every input starts in
  }

  // Delivers `data` as an opened Message from `sender` when it passes what codec::open checks
  // (the Verifier, a known body type with its table), then lets time run past the reply timeout.
  void deliver(const crypto::public_key& sender, const uint8_t* data, size_t size) {
    core::wire::opened m{sender, std::vector<uint8_t>(data, data + size)};
    if (!hmq::fuzz::opens_like_codec(m)) return;
    eng->on_message(m);
    loop.run_pending();
    loop.advance(std::chrono::seconds(31));
    eng->stop();
    loop.run_pending();
  }
};

using hmq::fuzz::message;

inline void write_seed(const std::filesystem::path& dir, const std::string& name,
                       const std::vector<uint8_t>& b) {
  std::ofstream(dir / name, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace
}  // namespace hmq::agbot::fuzz
