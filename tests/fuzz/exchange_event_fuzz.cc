// Fuzzes the exchange's change events as the agbot decodes them (agbot/engine.h on_message from
// the exchange's key: Event of every kind, and other bodies it must drop), starting from an
// agreement the agbot has just proposed to node acme/n1 (tests/fuzz/agbot_fuzz_env.h).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/agbot_fuzz_env.h"

using namespace hmq::agbot;
using namespace hmq::agbot::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  world w;
  w.deliver(xkey(), data, size);
  return 0;
}

// Seed corpus (exchange_event_replay --write-seeds DIR): one event of every kind about the
// fixture's node, pattern and service.
extern "C" void hmq_fuzz_write_seeds(const char* d) {
  const std::filesystem::path dir(d);
  auto event = [](fb::EventKind kind, uint64_t seq) {
    fb::EventT e;
    e.kind = kind;
    e.seq = seq;
    e.org = "acme";
    return e;
  };
  {
    auto e = event(fb::EventKind::node_registered, 1);
    e.id = "n2";
    e.pattern = "acme/gps";
    const auto k = key_of(0x42);
    e.node_public_key.assign(k.begin(), k.end());
    e.node_mailbox = crypto::mailbox_id(k);
    e.node_arch = "amd64";
    e.node_user_inputs.push_back(user_input("gps", "HZN_MODE", "fast"));
    e.has_node_user_inputs = true;
    write_seed(dir, "node_registered", message(std::move(e)));
  }
  for (auto [name, kind] : {std::pair{"node_unregistered", fb::EventKind::node_unregistered},
                            std::pair{"node_stale", fb::EventKind::node_stale},
                            std::pair{"node_online", fb::EventKind::node_online},
                            std::pair{"node_offline", fb::EventKind::node_offline}}) {
    auto e = event(kind, 2);
    e.id = "n1";
    e.pattern = "acme/gps";
    write_seed(dir, name, message(std::move(e)));
  }
  for (auto [name, kind] : {std::pair{"pattern_changed", fb::EventKind::pattern_changed},
                            std::pair{"pattern_removed", fb::EventKind::pattern_removed}}) {
    auto e = event(kind, 3);
    e.id = "gps";
    write_seed(dir, name, message(std::move(e)));
  }
  for (auto [name, kind] : {std::pair{"service_changed", fb::EventKind::service_changed},
                            std::pair{"service_removed", fb::EventKind::service_removed}}) {
    auto e = event(kind, 4);
    e.id = "gps_1.1.0_amd64";
    write_seed(dir, name, message(std::move(e)));
  }
  write_seed(dir, "unspecified", message(event(fb::EventKind::unspecified, 5)));
}
