// Legitimate exchange RPCs while an attacker floods the exchange with wrong secrets from fresh
// keys (issue 16, docs/security.md "Authentication floods"): p50/p99 of a closed loop of
// `get org` as root/root with no flood, with `--rate` bad-secret requests a second claiming
// root/root itself, and with as many claiming a new unknown user each time. Real mosquitto, real
// hmq-exchange at Argon2id "interactive" strength (64 MiB, the production default).
//
// Usage: auth_flood_bench [--seconds N] [--rate R] [--hash-strength interactive|moderate|minimum]
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <regex>

#include "bench/rpc_bench.h"
#include "schema/message_generated.h"
#include "tests/support/auth_flood.h"
#include "tests/support/fleet.h"
#include "tests/support/mosquitto.h"
#include "tests/support/process.h"

namespace {

using namespace hmq::bench;
namespace fb = hmq::wire::fb;
namespace fs = std::filesystem;

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5;
  double rate = 200;
  std::string strength = "interactive";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--rate") == 0) rate = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--hash-strength") == 0) strength = argv[i + 1];
  }
  const auto dur = std::chrono::milliseconds(seconds * 1000);
  crypto::init();
  auto x = start_exchange("auth-bench", strength);
  if (!x) return 1;
  const std::string uri = x->broker->uri();
  const auto& xkeys = x->keys;
  std::printf(
      "auth flood bench: mosquitto + hmq-exchange on loopback, hash strength %s, %d s per line, "
      "flood %.0f requests/s, each from a fresh key\n",
      strength.c_str(), seconds, rate);

  constexpr int clients = 2;
  std::vector<std::unique_ptr<endpoint>> peers;
  for (int i = 0; i < clients; ++i) peers.push_back(std::make_unique<endpoint>(uri));
  std::vector<hmq::core::loop::event_loop*> loops;
  for (auto& p : peers) loops.push_back(&p->loop);
  auto get_org = [&](int i, std::function<void(bool)> done) {
    auto req = std::make_shared<fb::RpcRequestT>();
    req->auth = std::make_unique<fb::AuthT>();
    req->auth->kind = fb::AuthKind::user;
    req->auth->org = "root";
    req->auth->id = "root";
    req->auth->secret = "rootpw";
    fb::GetResourceT g;
    g.key = std::make_unique<fb::ResourceKeyT>();
    g.key->kind = fb::ResourceKind::org;
    g.key->org = "root";
    req->op.Set(std::move(g));
    peers[i]->messenger->request(
        xkeys.pk, bus::topics{}.rpc(), wire::header{}, fb::Body::RpcRequest,
        [req](flatbuffers::FlatBufferBuilder& b) {
          return fb::RpcRequest::Pack(b, req.get()).Union();
        },
        30s,
        [done](hmq::core::result<wire::opened> r) {
          const fb::RpcResponse* resp = r ? r->message()->body_as_RpcResponse() : nullptr;
          done(resp && resp->status() == fb::RpcStatus::ok);
        });
  };
  // The honest client has logged in before (its secret is remembered), as a running operator
  // or agbot has.
  print("auth legit, no flood", clients, closed_loop(clients, dur, loops, get_org));

  bus::options fo;
  fo.broker_uri = uri;
  fo.client_id = "bench-flood";
  fo.clean_start = true;
  for (const char* target : {"root", ""}) {
    uint64_t sent = 0;
    result_line r;
    {
      hmq::test::auth_flood flood(fo, xkeys.pk, "root", target, rate);
      r = closed_loop(clients, dur, loops, get_org);
      sent = flood.sent();
    }
    const std::string what = *target ? "auth legit, flood on its own principal"
                                     : "auth legit, flood on unknown principals";
    print(what.c_str(), clients, r);
    std::printf("  (flood sent %llu requests in %d s)\n", static_cast<unsigned long long>(sent),
                seconds);
    std::this_thread::sleep_for(2s);  // let the queue drain before the next line
  }
  peers.clear();
  x->exchange->kill(SIGTERM);
  x->exchange->wait_for(20s);
  std::smatch m;
  const std::string text = hmq::test::read_file(x->log);
  if (std::regex_search(text, m, std::regex("authentication: [^\\n]*")))
    std::printf("exchange: %s\n", m.str().c_str());
  return 0;
}
