// A real mosquitto and real hmq-exchange processes, driven over the bus with sealed RPCs:
// durability of acknowledged writes across kill -9, two replicas on one store, events reaching
// agbot mailboxes, the printed public key.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "core/bus/client.h"
#include "core/bus/messenger.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"
#include "core/wire/service_signature.h"
#include "exchange/db.h"
#include "tests/support/fleet.h"
#include "tests/support/mosquitto.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace hmq::exchange {
namespace {

namespace crypto = core::crypto;
namespace bus = core::bus;
namespace wire = core::wire;
using namespace std::chrono_literals;
using fb::RpcStatus;

// The exchange process, its log waits and file reads are shared (tests/support/fleet.h).
using test::exchange_process;
using test::read_file;
const std::string exchange_binary = test::exchange_binary();

struct creds {
  fb::AuthKind kind;
  std::string org, id, secret;
};
const creds root{fb::AuthKind::user, "root", "root", "rootpw"};

// A bus identity on its own loop thread that sends RPCs to the exchange.
class peer {
 public:
  peer(const std::string& uri, const crypto::public_key& exchange_pk)
      : exchange_pk_(exchange_pk), codec_(keys_, loop_.time()) {
    bus::options o;
    o.broker_uri = uri;
    o.client_id = "test-" + crypto::mailbox_id(keys_.pk);
    o.clean_start = true;
    client_ = std::make_unique<bus::client>(loop_, o);
    messenger_ = std::make_unique<bus::messenger>(loop_, *client_, codec_);
    thread_ = std::thread([this] { loop_.run(); });
    std::promise<core::result<void>> connected;
    loop_.post([&] {
      client_->start([&](core::result<void> r) {
        if (r) messenger_->start();
        connected.set_value(r);
      });
    });
    auto r = connected.get_future().get();
    EXPECT_TRUE(r) << r.err().message();
  }
  ~peer() {
    loop_.post([this] {
      messenger_->stop();
      client_->stop();
      loop_.stop();
    });
    thread_.join();
  }

  const crypto::public_key& public_key() const { return keys_.pk; }
  const std::string& mailbox() const { return messenger_->mailbox(); }
  core::loop::event_loop& loop() { return loop_; }
  bus::messenger& messenger() { return *messenger_; }

  // Sends on the loop thread; `done` runs there with the response (or internal + error text on
  // timeout).
  void send(const creds& c, fb::RpcOpUnion op, std::function<void(fb::RpcResponseT)> done,
            std::chrono::milliseconds timeout = 20s) {
    auto req = std::make_shared<fb::RpcRequestT>();
    req->auth = std::make_unique<fb::AuthT>();
    req->auth->kind = c.kind;
    req->auth->org = c.org;
    req->auth->id = c.id;
    req->auth->secret = c.secret;
    req->op = std::move(op);
    loop_.post([this, req, done = std::move(done), timeout] {
      messenger_->request(
          exchange_pk_, bus::topics{}.rpc(), wire::header{}, fb::Body::RpcRequest,
          [&](flatbuffers::FlatBufferBuilder& b) {
            return fb::RpcRequest::Pack(b, req.get()).Union();
          },
          timeout,
          [done](core::result<wire::opened> r) {
            fb::RpcResponseT resp;
            if (!r) {
              resp.status = RpcStatus::unspecified;
              resp.error_message = r.err().message();
            } else if (const auto* body = r->message()->body_as_RpcResponse()) {
              body->UnPackTo(&resp);
            } else {
              resp.status = RpcStatus::unspecified;
              resp.error_message = "not an RpcResponse";
            }
            done(std::move(resp));
          });
    });
  }

  fb::RpcResponseT call(const creds& c, fb::RpcOpUnion op,
                        std::chrono::milliseconds timeout = 20s) {
    std::promise<fb::RpcResponseT> p;
    send(
        c, std::move(op), [&](fb::RpcResponseT r) { p.set_value(std::move(r)); }, timeout);
    return p.get_future().get();
  }

 private:
  core::loop::event_loop loop_;
  crypto::box_keypair keys_ = crypto::box_keypair::generate();
  crypto::public_key exchange_pk_;
  wire::codec codec_;
  std::unique_ptr<bus::client> client_;
  std::unique_ptr<bus::messenger> messenger_;
  std::thread thread_;
};

template <typename T>
fb::RpcOpUnion create_op(T resource) {
  fb::CreateResourceT c;
  c.resource.Set(std::move(resource));
  fb::RpcOpUnion u;
  u.Set(std::move(c));
  return u;
}
template <typename T>
fb::RpcOpUnion op(T v) {
  fb::RpcOpUnion u;
  u.Set(std::move(v));
  return u;
}
fb::RpcOpUnion create_node_op(const std::string& org, const std::string& id) {
  fb::NodeT n;
  n.org = org;
  n.id = id;
  n.token = "tok-" + id;
  return create_op(std::move(n));
}
fb::RpcOpUnion create_org_op(const std::string& name) {
  fb::OrgT o;
  o.name = name;
  return create_op(std::move(o));
}

// Every node id in org, through paged List.
std::set<std::string> list_nodes(peer& p, const std::string& org) {
  std::set<std::string> ids;
  std::string token;
  for (int guard = 0; guard < 100; ++guard) {
    fb::ListResourcesT l;
    l.kind = fb::ResourceKind::node;
    l.org = org;
    l.page_token = token;
    l.limit = 1000;
    auto r = p.call(root, op(std::move(l)));
    EXPECT_EQ(r.status, RpcStatus::ok) << r.error_message;
    if (r.status != RpcStatus::ok) break;
    auto* list = r.result.AsResourceList();
    for (auto& it : list->items) ids.insert(it->resource.AsNode()->id);
    token = list->next_page_token;
    if (token.empty()) break;
  }
  return ids;
}

class exchange_server : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = crypto::load_or_create_box_keypair(data_.path() / "exchange.key");
    ASSERT_TRUE(k) << k.err().message();
    exchange_pk_ = k->pk;
  }
  void check_integrity() {
    auto d = db::open(data_.path() / "exchange.db");
    ASSERT_TRUE(d) << d.err().message();
    auto r = d->integrity_check();
    EXPECT_TRUE(r) << (r ? "" : r.err().message());
  }

  test::mosquitto_broker broker_;
  test::temp_dir data_{"hmq-exchange"};
  crypto::public_key exchange_pk_{};
};

TEST_F(exchange_server, prints_the_public_key_it_serves_with) {
  test::process_spec spec;
  spec.argv = {exchange_binary, "--data-dir", data_.path().string(), "--print-public-key"};
  spec.log_file = data_.path() / "print.log";
  auto p = test::process::start(spec);
  auto st = p.wait_for(20s);
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0);
  EXPECT_EQ(read_file(spec.log_file), crypto::to_base64(exchange_pk_) + "\n");
}

TEST_F(exchange_server, refuses_wrong_password_over_the_bus) {
  exchange_process x(data_.path(), broker_.uri());
  peer p(broker_.uri(), exchange_pk_);
  auto r = p.call({fb::AuthKind::user, "root", "root", "wrong"}, create_org_op("acme"));
  EXPECT_EQ(r.status, RpcStatus::unauthorized);
  EXPECT_EQ(r.error_message, "bad credentials for user root/root");
  EXPECT_EQ(p.call(root, create_org_op("acme")).status, RpcStatus::ok);
  x.stop();
}

// Protects durability: a response is only sent after COMMIT, so whatever was acknowledged
// before a SIGKILL is in the store afterwards, and the store is intact.
TEST_F(exchange_server, every_acknowledged_create_survives_kill_9) {
  exchange_process x(data_.path(), broker_.uri());
  peer p(broker_.uri(), exchange_pk_);
  ASSERT_EQ(p.call(root, create_org_op("acme")).status, RpcStatus::ok);

  constexpr int total = 1000;
  constexpr int kill_after = 300;
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::string> acked;
  int answered = 0;
  for (int i = 0; i < total; ++i) {
    std::string id = "n" + std::to_string(i);
    p.send(
        root, create_node_op("acme", id),
        [&, id](fb::RpcResponseT r) {
          std::lock_guard lk(mu);
          ++answered;
          // already_exists: a create redelivered after the restart whose first run had committed.
          if (r.status == RpcStatus::ok) acked.insert(id);
          cv.notify_all();
        },
        15s);
  }
  size_t acked_at_kill = 0;
  {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 60s, [&] { return acked.size() >= kill_after; }));
    x.kill_hard();
    acked_at_kill = acked.size();
  }
  EXPECT_LT(acked_at_kill, static_cast<size_t>(total)) << "the kill came too late to test anything";
  x.start();
  // Requests the dead process had taken from the broker but not committed stay unanswered (and
  // time out at the client); none of them may show up as acknowledged-but-missing.
  {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 120s, [&] { return answered == total; }));
  }
  auto stored = list_nodes(p, "acme");
  std::lock_guard lk(mu);
  for (const auto& id : acked)
    EXPECT_TRUE(stored.count(id)) << "acknowledged " << id << " is missing";
  std::cout << "acknowledged before kill: " << acked_at_kill
            << ", acknowledged in all: " << acked.size() << ", stored: " << stored.size() << "\n";
  x.stop();
  check_integrity();
}

// Two replicas on one store behind the shared subscription: every request is served once,
// concurrent creates of the same id give exactly one ok.
TEST_F(exchange_server, two_replicas_on_one_store_serve_correctly) {
  exchange_process a(data_.path(), broker_.uri(), "a");
  exchange_process b(data_.path(), broker_.uri(), "b");
  peer p(broker_.uri(), exchange_pk_);
  ASSERT_EQ(p.call(root, create_org_op("acme")).status, RpcStatus::ok);

  constexpr int unique = 300;
  constexpr int doubled = 50;
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<RpcStatus>> results;
  int answered = 0, sent = 0;
  auto record = [&](std::string id) {
    return [&, id](fb::RpcResponseT r) {
      std::lock_guard lk(mu);
      results[id].push_back(r.status);
      if (r.status != RpcStatus::ok && r.status != RpcStatus::already_exists)
        ADD_FAILURE() << id << ": " << fb::EnumNameRpcStatus(r.status) << " " << r.error_message;
      ++answered;
      cv.notify_all();
    };
  };
  for (int i = 0; i < unique; ++i, ++sent)
    p.send(root, create_node_op("acme", "u" + std::to_string(i)), record("u" + std::to_string(i)));
  for (int i = 0; i < doubled; ++i) {
    std::string id = "d" + std::to_string(i);
    p.send(root, create_node_op("acme", id), record(id));
    p.send(root, create_node_op("acme", id), record(id));
    sent += 2;
  }
  {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 120s, [&] { return answered == sent; }));
  }
  for (auto& [id, st] : results) {
    if (id[0] == 'u') {
      EXPECT_EQ(st, std::vector<RpcStatus>{RpcStatus::ok}) << id;
    } else {
      ASSERT_EQ(st.size(), 2u) << id;
      EXPECT_EQ(std::count(st.begin(), st.end(), RpcStatus::ok), 1) << id;
      EXPECT_EQ(std::count(st.begin(), st.end(), RpcStatus::already_exists), 1) << id;
    }
  }
  EXPECT_EQ(list_nodes(p, "acme").size(), static_cast<size_t>(unique + doubled));
  a.stop();
  b.stop();
  // Both replicas took part (each logs how many requests it served when it stops).
  for (auto* x : {&a, &b}) {
    auto log = read_file(x->log_file());
    auto pos = log.find("stopping after ");
    ASSERT_NE(pos, std::string::npos) << log;
    EXPECT_GT(std::stoi(log.substr(pos + 15)), 0) << log;
  }
  check_integrity();
}

// Events are sealed to the agbot that serves the pattern and arrive in its mailbox.
TEST_F(exchange_server, node_registration_reaches_the_serving_agbot_mailbox) {
  exchange_process x(data_.path(), broker_.uri());
  peer admin(broker_.uri(), exchange_pk_);
  ASSERT_EQ(admin.call(root, create_org_op("acme")).status, RpcStatus::ok);
  // A signed service and a pattern for it.
  auto signer = crypto::sign_keypair::generate();
  fb::DeploymentT d;
  d.containers.push_back(std::make_unique<fb::ContainerT>());
  d.containers[0]->name = "main";
  d.containers[0]->image = "busybox";
  fb::ServiceT s;
  s.org = "acme";
  s.url = "https://acme.com/gps";
  s.version = "1.0.0";
  s.arch = "amd64";
  s.sharable = fb::Sharing::singleton;
  s.deployment = to_blob<fb::Deployment>(d);
  core::wire::sign_service(s, signer);
  auto r = admin.call(root, create_op(std::move(s)));
  ASSERT_EQ(r.status, RpcStatus::ok) << r.error_message;
  fb::PatternT pat;
  pat.org = "acme";
  pat.name = "p1";
  pat.services.push_back(std::make_unique<fb::PatternServiceT>());
  pat.services[0]->service_url = "https://acme.com/gps";
  pat.services[0]->service_org = "acme";
  pat.services[0]->service_arch = "amd64";
  pat.services[0]->service_versions.push_back(std::make_unique<fb::ServiceVersionT>());
  pat.services[0]->service_versions[0]->version = "1.0.0";
  ASSERT_EQ(admin.call(root, create_op(std::move(pat))).status, RpcStatus::ok);
  fb::AgbotT a;
  a.org = "acme";
  a.id = "ag1";
  a.token = "agtok";
  a.patterns.push_back(std::make_unique<fb::AgbotPatternT>());
  a.patterns[0]->pattern_org = "acme";
  a.patterns[0]->pattern = "p1";
  ASSERT_EQ(admin.call(root, create_op(std::move(a))).status, RpcStatus::ok);
  ASSERT_EQ(admin.call(root, create_node_op("acme", "n1")).status, RpcStatus::ok);

  peer agbot(broker_.uri(), exchange_pk_);
  std::promise<fb::EventT> got;
  bool first = true;
  agbot.loop().post([&] {
    agbot.messenger().on(fb::Body::Event, [&](const wire::opened& m) {
      if (!std::exchange(first, false)) return;
      fb::EventT e;
      m.message()->body_as_Event()->UnPackTo(&e);
      got.set_value(std::move(e));
    });
  });
  ASSERT_EQ(agbot.call({fb::AuthKind::agbot, "acme", "ag1", "agtok"}, op(fb::AgbotHelloT{})).status,
            RpcStatus::ok);

  peer node(broker_.uri(), exchange_pk_);
  fb::RegisterNodeT reg;
  reg.pattern = "acme/p1";
  reg.arch = "amd64";
  r = node.call({fb::AuthKind::node, "acme", "n1", "tok-n1"}, op(std::move(reg)));
  ASSERT_EQ(r.status, RpcStatus::ok) << r.error_message;

  auto f = got.get_future();
  ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
  auto e = f.get();
  EXPECT_EQ(e.kind, fb::EventKind::node_registered);
  EXPECT_EQ(e.node_mailbox, node.mailbox());
  EXPECT_EQ(e.node_public_key,
            std::vector<uint8_t>(node.public_key().begin(), node.public_key().end()));
  EXPECT_EQ(e.seq, 1u);
  x.stop();
}

}  // namespace
}  // namespace hmq::exchange
