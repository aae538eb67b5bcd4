// Fuzzes the heartbeat and presence frames the exchange takes from hb/{mailbox} and
// presence/{mailbox} (core/wire/heartbeat.h open_frame, exchange/heartbeat.h tracker): the
// bytes every node can send without an envelope. The first input byte picks the topic (even:
// heartbeat, odd: presence) and the mailbox (bit 1: the registered node's, else an unknown one);
// the rest is the frame. Fixed keys (constant seeds) and a standing clock, so the seed corpus
// holds frames that really open. Every input starts from the same state: a store with org acme,
// pattern acme/p and node acme/n1 registered with the node key, and a tracker that loaded it;
// the input is delivered twice (a replay) and then flushed.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/crypto/crypto.h"
#include "core/log/log.h"
#include "core/loop/loop.h"
#include "core/wire/heartbeat.h"
#include "exchange/db.h"
#include "exchange/heartbeat.h"

namespace {

using namespace hmq;
namespace crypto = core::crypto;
namespace cw = core::wire;
namespace fb = hmq::wire::fb;

constexpr std::array<uint8_t, 32> exchange_seed = {
    'h', 'm', 'q', '-', 'f', 'u', 'z', 'z', '-', 'x', 'c', 'h', 'a', 'n', 'g', 'e',
    '-', 'k', 'e', 'y', '-', 's', 'e', 'e', 'd', '-', '0', '0', '0', '0', '0', '1'};
constexpr std::array<uint8_t, 32> node_seed = {
    'h', 'm', 'q', '-', 'f', 'u', 'z', 'z', '-', 'n', 'o', 'd', 'e', '-', 'k', 'e',
    'y', '-', 's', 'e', 'e', 'd', '-', '0', '0', '0', '0', '0', '0', '0', '0', '1'};
constexpr int64_t clock_ms = 1'700'000'000'000;

struct keys {
  crypto::box_keypair exchange = std::move(crypto::box_keypair::from_secret(exchange_seed)).value();
  crypto::box_keypair node = std::move(crypto::box_keypair::from_secret(node_seed)).value();
  crypto::shared_key session = crypto::precompute(exchange.pk, node.sk);
  std::string mailbox = crypto::mailbox_id(node.pk);
};
const keys& k() {
  static const keys kk;
  return kk;
}

exchange::db registered_store() {
  auto d = exchange::db::open_memory();
  if (!d) __builtin_trap();
  fb::OrgT o;
  o.name = "acme";
  if (!d->org_insert(o)) __builtin_trap();
  fb::PatternT p;
  p.org = "acme";
  p.name = "p";
  auto ps = std::make_unique<fb::PatternServiceT>();
  ps->service_org = "acme";
  ps->service_url = "https://acme.example/s";
  ps->node_health = std::make_unique<fb::NodeHealthT>();
  ps->node_health->missing_heartbeat_interval = 30;
  p.services.push_back(std::move(ps));
  if (!d->pattern_put(p, true)) __builtin_trap();
  fb::NodeT n;
  n.org = "acme";
  n.id = "n1";
  n.pattern = "acme/p";
  n.arch = "amd64";
  n.public_key.assign(k().node.pk.begin(), k().node.pk.end());
  n.mailbox = k().mailbox;
  if (!d->node_insert(n, "hash")) __builtin_trap();
  return std::move(*d);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = hmq::core::log::set_level("off");
  (void)quiet;
  if (size == 0) return 0;
  const bool presence = data[0] & 1;
  const std::string mailbox = data[0] & 2 ? k().mailbox : std::string("aaaaaaaaaaaaaaaa");
  std::span<const uint8_t> frame(data + 1, size - 1);

  // The decoder alone, with the right key: an opened frame has a known kind.
  if (auto f = cw::open_frame(frame, k().session); f) {
    const auto kind = static_cast<uint8_t>(f->kind);
    if (kind < 1 || kind > 3) __builtin_trap();
  }

  core::loop::manual_clock clock(clock_ms);
  auto store = registered_store();
  exchange::heartbeat_tracker t(store, k().exchange, clock);
  if (!t.load()) __builtin_trap();
  for (int i = 0; i < 2; ++i) {
    if (presence)
      t.on_presence(mailbox, frame);
    else
      t.on_heartbeat(mailbox, frame);
  }
  const auto& s = t.stats();
  // A frame is taken at most once: the second delivery is a replay.
  if (s.accepted + s.presence > 1) __builtin_trap();
  clock.advance(std::chrono::seconds(31));
  (void)t.flush();
  return 0;
}

// Seed corpus (replay binary: heartbeat_frame_replay --write-seeds DIR): frames of every kind
// from the registered node, and the ways a frame goes wrong.
extern "C" void hmq_fuzz_write_seeds(const char* d) {
  std::filesystem::path dir(d);
  auto seed = [&](const std::string& name, uint8_t selector, const std::vector<uint8_t>& f) {
    std::vector<uint8_t> b{selector};
    b.insert(b.end(), f.begin(), f.end());
    std::ofstream(dir / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  };
  const auto& s = k().session;
  const auto hb = cw::seal_frame(cw::frame_kind::heartbeat, 1, {2, 0xdeadbeef}, s);
  seed("heartbeat", 2, hb);
  seed("online", 3, cw::seal_frame(cw::frame_kind::online, 2, {}, s));
  seed("offline", 3, cw::seal_frame(cw::frame_kind::offline, 3, {}, s));
  seed("heartbeat_unknown_mailbox", 0, hb);
  seed("heartbeat_on_presence_topic", 3, hb);
  auto flipped = hb;
  flipped[12] ^= 1;
  seed("heartbeat_bad_mac", 2, flipped);
  auto bad_kind = hb;
  bad_kind[0] = 9;
  seed("heartbeat_bad_kind", 2, bad_kind);
  seed("heartbeat_truncated", 2, std::vector<uint8_t>(hb.begin(), hb.begin() + 20));
  auto big = hb;
  big.resize(cw::max_heartbeat_frame_bytes + 1, 0);
  seed("heartbeat_too_large", 2, big);
  seed("counter_zero", 2, cw::seal_frame(cw::frame_kind::heartbeat, 0, {}, s));
}
