// Exchange RPC round trips per second (create node, get node) with 1 and 8 concurrent clients,
// against a real mosquitto and a real hmq-exchange, next to the raw MQTT request/response rate
// (a plain echo between two bus clients, no sealing) measured in the same run.
//
// Usage: exchange_bench [--seconds N] [--hash-strength interactive|moderate|minimum]
// The strength is the exchange's Argon2id cost for the node tokens that "create node" hashes.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/rpc_bench.h"
#include "core/bus/client.h"
#include "core/bus/messenger.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"
#include "schema/message_generated.h"
#include "tests/support/fleet.h"
#include "tests/support/mosquitto.h"
#include "tests/support/process.h"

namespace {

using namespace hmq::bench;
namespace fb = hmq::wire::fb;
namespace fs = std::filesystem;

}  // namespace

int main(int argc, char** argv) {
  int seconds = 3;
  std::string strength = "minimum";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--hash-strength") == 0) strength = argv[i + 1];
  }
  auto dur = std::chrono::milliseconds(seconds * 1000);
  crypto::init();
  auto x = start_exchange("exchange-bench", strength, {"--log-level", "warn"});
  if (!x) return 1;
  const std::string uri = x->broker->uri();
  const auto& xkeys = x->keys;
  std::printf(
      "exchange bench: mosquitto + hmq-exchange on loopback, %d s per line, token hash strength "
      "%s\n",
      seconds, strength.c_str());

  // ---- raw MQTT echo: requesters publish to echo/<i>, one echo client answers on reply/<i>.
  {
    endpoint echo(uri, false);
    std::vector<std::unique_ptr<endpoint>> req;
    for (int i = 0; i < 8; ++i) req.push_back(std::make_unique<endpoint>(uri, false));
    std::vector<std::function<void(bool)>> waiting(8);
    std::promise<void> subscribed;
    std::atomic<int> subs{0};
    echo.loop.post([&] {
      echo.client->subscribe(
          "bench/echo/+", 1,
          [&](const bus::inbound& in) {
            echo.client->publish("bench/reply/" + in.topic.substr(in.topic.rfind('/') + 1),
                                 in.payload);
          },
          [&](hmq::core::result<void>) {
            if (++subs == 9) subscribed.set_value();
          });
    });
    for (int i = 0; i < 8; ++i) {
      req[i]->loop.post([&, i] {
        req[i]->client->subscribe(
            "bench/reply/" + std::to_string(i), 1,
            [&, i](const bus::inbound&) {
              auto w = std::move(waiting[i]);
              if (w) w(true);
            },
            [&](hmq::core::result<void>) {
              if (++subs == 9) subscribed.set_value();
            });
      });
    }
    subscribed.get_future().wait_for(10s);
    std::vector<hmq::core::loop::event_loop*> loops;
    for (auto& r : req) loops.push_back(&r->loop);
    std::vector<uint8_t> payload(100, 0x5a);
    for (int clients : {1, 8}) {
      auto r = closed_loop(clients, dur, loops, [&](int i, std::function<void(bool)> done) {
        waiting[i] = std::move(done);
        req[i]->client->publish("bench/echo/" + std::to_string(i), payload);
      });
      print("raw MQTT echo (QoS 1)", clients, r);
    }
  }

  // ---- exchange RPCs
  std::vector<std::unique_ptr<endpoint>> peers;
  for (int i = 0; i < 8; ++i) peers.push_back(std::make_unique<endpoint>(uri));
  std::vector<hmq::core::loop::event_loop*> loops;
  for (auto& p : peers) loops.push_back(&p->loop);
  auto rpc = [&](int i, std::shared_ptr<fb::RpcRequestT> req, std::function<void(bool)> done) {
    peers[i]->messenger->request(
        xkeys.pk, bus::topics{}.rpc(), wire::header{}, fb::Body::RpcRequest,
        [&](flatbuffers::FlatBufferBuilder& b) {
          return fb::RpcRequest::Pack(b, req.get()).Union();
        },
        30s,
        [done](hmq::core::result<wire::opened> r) {
          const fb::RpcResponse* resp = r ? r->message()->body_as_RpcResponse() : nullptr;
          done(resp && resp->status() == fb::RpcStatus::ok);
        });
  };
  auto request = [](fb::RpcOpUnion op) {
    auto req = std::make_shared<fb::RpcRequestT>();
    req->auth = std::make_unique<fb::AuthT>();
    req->auth->kind = fb::AuthKind::user;
    req->auth->org = "root";
    req->auth->id = "root";
    req->auth->secret = "rootpw";
    req->op = std::move(op);
    return req;
  };
  {
    fb::OrgT o;
    o.name = "bench";
    fb::CreateResourceT c;
    c.resource.Set(std::move(o));
    fb::RpcOpUnion u;
    u.Set(std::move(c));
    std::promise<bool> p;
    loops[0]->post([&] { rpc(0, request(std::move(u)), [&](bool ok) { p.set_value(ok); }); });
    if (!p.get_future().get()) {
      std::fprintf(stderr, "bench: cannot create org\n");
      return 1;
    }
  }
  std::atomic<uint64_t> next_id{0};
  for (int clients : {1, 8}) {
    auto r = closed_loop(clients, dur, loops, [&](int i, std::function<void(bool)> done) {
      fb::NodeT n;
      n.org = "bench";
      n.id = "n" + std::to_string(next_id++);
      n.token = "token";
      fb::CreateResourceT c;
      c.resource.Set(std::move(n));
      fb::RpcOpUnion u;
      u.Set(std::move(c));
      rpc(i, request(std::move(u)), std::move(done));
    });
    print("exchange create node", clients, r);
  }
  uint64_t created = next_id.load();
  for (int clients : {1, 8}) {
    auto r = closed_loop(clients, dur, loops, [&](int i, std::function<void(bool)> done) {
      fb::GetResourceT g;
      g.key = std::make_unique<fb::ResourceKeyT>();
      g.key->kind = fb::ResourceKind::node;
      g.key->org = "bench";
      g.key->id = "n" + std::to_string(crypto::random_u64() % std::max<uint64_t>(created, 1));
      fb::RpcOpUnion u;
      u.Set(std::move(g));
      rpc(i, request(std::move(u)), std::move(done));
    });
    print("exchange get node", clients, r);
  }
  peers.clear();
  return 0;
}
