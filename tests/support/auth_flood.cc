#include "tests/support/auth_flood.h"

#include <future>
#include <utility>

#include "core/bus/topics.h"
#include "core/wire/codec.h"
#include "schema/message_generated.h"

namespace hmq::test {

namespace crypto = core::crypto;
namespace fb = wire::fb;
using namespace std::chrono_literals;

namespace {
constexpr auto tick_every = 10ms;
}

auth_flood::auth_flood(core::bus::options o, const crypto::public_key& exchange, std::string org,
                       std::string user, double per_second)
    : exchange_(exchange),
      org_(std::move(org)),
      user_(std::move(user)),
      per_tick_(per_second * std::chrono::duration<double>(tick_every).count()) {
  client_ = std::make_unique<core::bus::client>(loop_, std::move(o));
  thread_ = std::thread([this] { loop_.run(); });
  std::promise<void> up;
  loop_.post([&] {
    client_->start([&](core::result<void> r) {
      connected_ = r.ok();
      up.set_value();
      if (r) tick();
    });
  });
  up.get_future().wait_for(20s);
}

auth_flood::~auth_flood() {
  std::promise<void> down;
  loop_.post([&] {
    timer_.cancel();
    client_->stop();
    loop_.stop();
    down.set_value();
  });
  down.get_future().wait_for(10s);
  thread_.join();
}

void auth_flood::tick() {
  owed_ += per_tick_;
  for (; owed_ >= 1; owed_ -= 1) {
    const auto keys = crypto::box_keypair::generate();
    core::wire::codec codec(keys, loop_.time());
    fb::RpcRequestT req;
    req.auth = std::make_unique<fb::AuthT>();
    req.auth->kind = fb::AuthKind::user;
    req.auth->org = org_;
    req.auth->id = user_.empty() ? "ghost-" + std::to_string(crypto::random_u64()) : user_;
    req.auth->secret = "wrong-" + std::to_string(crypto::random_u64());
    fb::GetResourceT g;
    g.key = std::make_unique<fb::ResourceKeyT>();
    g.key->kind = fb::ResourceKind::org;
    g.key->org = org_;
    req.op.Set(std::move(g));
    core::wire::header h;
    h.reply_to = crypto::mailbox_id(keys.pk);
    auto msg = core::wire::build_message(
        h, loop_.time(), fb::Body::RpcRequest,
        [&](flatbuffers::FlatBufferBuilder& b) { return fb::RpcRequest::Pack(b, &req).Union(); });
    client_->publish(core::bus::topics{}.rpc(), codec.seal(msg, exchange_));
    ++sent_;
  }
  timer_ = loop_.call_after(std::chrono::duration_cast<std::chrono::milliseconds>(tick_every),
                            [this] { tick(); });
}

}  // namespace hmq::test
