#include "core/bus/messenger.h"

#include <algorithm>
#include <cstring>

#include "core/log/log.h"
#include "core/wire/size_caps.h"

// Security notes (why the code below is shaped this way):
// - Every inbound byte goes through codec::open (verify, decrypt, freshness, dedup) before a
//   field is read; a rejection is counted and logged at debug (never warn: a hostile peer must
//   not be able to flood the logs), never thrown.
// - A response is matched to its request by correlation id AND by the key the request was sent
//   to: anyone can publish to our mailbox, and a correlation id alone would let a third party
//   answer in the peer's name.
// - respond() answers the requester's own mailbox, derived from its authenticated key; the
//   reply_to inside the request is ignored, or any client could make us send responses to an
//   arbitrary mailbox (a reflector). The only other destination is an inbox the caller names
//   (the exchange: the inbox of the user the request authenticated as, when the request's
//   reply_to asks for exactly that one).
namespace hmq::core::bus {

namespace {

class rpc_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "rpc"; }
  std::string message(int c) const override {
    switch (static_cast<rpc_errc>(c)) {
      case rpc_errc::ok:
        return "ok";
      case rpc_errc::timeout:
        return "no response before the timeout";
      case rpc_errc::stopped:
        return "messenger stopped with the request pending";
    }
    return "unknown rpc error " + std::to_string(c);
  }
};

const std::shared_ptr<spdlog::logger>& logger() {
  static const auto l = core::log::get("bus");
  return l;
}

}  // namespace

const std::error_category& rpc_category() {
  static const rpc_category_impl c;
  return c;
}

std::error_code make_error_code(rpc_errc e) {
  return {static_cast<int>(e), rpc_category()};
}

messenger::messenger(loop::scheduler& loop, client& c, wire::codec& codec, topics t)
    : loop_(loop),
      client_(c),
      codec_(codec),
      topics_(std::move(t)),
      mailbox_(crypto::mailbox_id(codec.public_key())) {}

messenger::~messenger() {
  stop();
  *alive_ = false;
}

size_t messenger::key_hash::operator()(const crypto::public_key& k) const {
  // Keys are authenticated (open() succeeded) and X25519 public keys are uniform: any 8 bytes
  // hash well enough, and a sender cannot pick colliding keys without their secret keys.
  size_t h;
  std::memcpy(&h, k.data(), sizeof h);
  return h;
}

void messenger::limit_senders(token_bucket_options o, message_handler on_first_reject,
                              std::vector<crypto::public_key> exempt) {
  limiter_ = token_buckets<crypto::public_key, key_hash>(o);
  on_limited_ = std::move(on_first_reject);
  exempt_ = std::move(exempt);
}

void messenger::on(wire::fb::Body type, message_handler h) {
  handlers_[static_cast<uint8_t>(type)] = std::move(h);
}

void messenger::listen(std::string filter) {
  extra_filters_.push_back(filter);
  if (started_) {
    client_.subscribe(
        filter, 1,
        [this, alive = alive_](const inbound& in) {
          if (*alive) on_inbound(in);
        },
        [filter](result<void> r) {
          if (!r) logger()->error("subscribe to {} failed: {}", filter, r.err().message());
        });
  }
}

void messenger::listen_inbox(const std::string& inbox) {
  mailbox_optional_ = true;
  reply_to_ = inbox;
  listen(topics_.inbox(inbox, mailbox_));
}

void messenger::start() {
  if (started_) return;
  started_ = true;
  auto h = [this, alive = alive_](const inbound& in) {
    if (*alive) on_inbound(in);
  };
  client_.subscribe(
      mailbox_topic(), 1, h, [box = mailbox_topic(), optional = mailbox_optional_](result<void> r) {
        if (r) return;
        if (optional)
          logger()->debug("own mailbox {} refused: {} (answers come to the inbox)", box,
                          r.err().message());
        else
          logger()->error("subscribe to own mailbox {} failed: {}", box, r.err().message());
      });
  for (const auto& f : extra_filters_)
    client_.subscribe(f, 1, h, [f](result<void> r) {
      if (!r) logger()->error("subscribe to {} failed: {}", f, r.err().message());
    });
}

void messenger::stop() {
  if (!started_) return;
  started_ = false;
  // The broker keeps our subscriptions (persistent session: messages for us are queued while we
  // are away), so we only stop listening locally: a null handler, no UNSUBSCRIBE.
  client_.subscribe(mailbox_topic(), 1, nullptr);
  for (const auto& f : extra_filters_) client_.subscribe(f, 1, nullptr);
  auto pending = std::exchange(pending_, {});
  for (auto& [id, p] : pending) {
    p.timer.cancel();
    if (p.cb) p.cb(error{make_error_code(rpc_errc::stopped), {}});
  }
}

void messenger::on_inbound(const inbound& in) {
  if (!started_) return;
  // Opened but not yet remembered: only a message we keep takes up replay memory, so a flood
  // over the rate limit cannot push honest ids out of it (wire::codec::record).
  auto r = codec_.open_unrecorded(in.payload);
  if (!r) {
    ++dropped_rejected_;
    logger()->debug("dropped message on {}: {}", in.topic,
                    wire::name(static_cast<wire::errc>(r.code().value())));
    return;
  }
  wire::opened msg = std::move(r).value();
  const auto* m = msg.message();
  // Size cap of the body type, before any handler reads the body.
  if (msg.bytes.size() > wire::max_message_bytes(m->body_type())) {
    ++dropped_oversize_;
    logger()->debug("dropped {} of {} bytes on {}: over its size cap",
                    wire::fb::EnumNameBody(m->body_type()), msg.bytes.size(), in.topic);
    return;
  }
  const uint64_t corr = m->correlation_id();
  if (corr != 0) {
    if (auto it = pending_.find(corr); it != pending_.end()) {
      if (!crypto::equal(it->second.peer, msg.sender)) {
        ++dropped_unrouted_;
        logger()->debug("dropped response to request {:x} from a key it was not sent to", corr);
        return;
      }
      if (!keep(msg)) return;
      auto cb = std::move(it->second.cb);
      it->second.timer.cancel();
      pending_.erase(it);
      if (cb) cb(std::move(msg));
      return;
    }
    // Not a response we wait for: a request (requests carry a correlation id too) or a late
    // response, routed by type like any message.
  }
  // Responses to our own requests are never limited (we asked for them); everything else is,
  // per authenticated sender.
  const bool exempt = std::any_of(exempt_.begin(), exempt_.end(), [&](const crypto::public_key& k) {
    return crypto::equal(k, msg.sender);
  });
  if (auto d = exempt ? token_bucket_decision{} : limiter_.take(msg.sender, loop_.time().now_ms());
      !d.allowed) {
    logger()->debug("dropped {} from a sender over its rate limit",
                    wire::fb::EnumNameBody(m->body_type()));
    if (d.first_in_window && on_limited_) on_limited_(msg);
    return;
  }
  if (!keep(msg)) return;
  auto h = handlers_.find(static_cast<uint8_t>(m->body_type()));
  if (h == handlers_.end() || !h->second) {
    ++dropped_unrouted_;
    logger()->debug("dropped message with body {} on {}: no handler",
                    wire::fb::EnumNameBody(m->body_type()), in.topic);
    return;
  }
  h->second(msg);
}

bool messenger::keep(const wire::opened& msg) {
  if (codec_.record(msg)) return true;
  ++dropped_rejected_;  // the codec counted and logged why
  return false;
}

void messenger::send(const crypto::public_key& recipient, std::span<const uint8_t> message,
                     publish_options o, std::string topic, completion done) {
  auto sealed = codec_.seal(message, recipient);
  if (sealed.empty()) {
    if (done) {
      loop_.post([done = std::move(done)] {
        done(error{make_error_code(errc::publish_failed), "recipient key unusable"});
      });
    }
    return;
  }
  if (topic.empty()) topic = default_topic(recipient);
  client_.publish(std::move(topic), std::move(sealed), o, std::move(done));
}

void messenger::request(
    const crypto::public_key& recipient, std::string topic, wire::header h, wire::fb::Body type,
    const std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)>& body,
    std::chrono::milliseconds timeout, response_handler on_response, publish_options o) {
  uint64_t corr = h.correlation_id;
  while (corr == 0 || pending_.count(corr) != 0) corr = crypto::random_u64();
  h.correlation_id = corr;
  h.reply_to = reply_to_.empty() ? mailbox_ : reply_to_;
  auto msg = wire::build_message(std::move(h), loop_.time(), type, body);

  pending p{recipient, std::move(on_response), {}};
  p.timer = loop_.call_after(timeout, [this, corr] {
    auto it = pending_.find(corr);
    if (it == pending_.end()) return;
    auto cb = std::move(it->second.cb);
    pending_.erase(it);
    if (cb) cb(error{make_error_code(rpc_errc::timeout), {}});
  });
  pending_[corr] = std::move(p);

  // A publish that fails (client stopped, offline buffer full) fails the request at once with
  // the bus error instead of waiting for the timeout.
  send(recipient, msg, o, std::move(topic), [this, corr, alive = alive_](result<void> r) {
    if (r || !*alive) return;
    auto it = pending_.find(corr);
    if (it == pending_.end()) return;
    auto cb = std::move(it->second.cb);
    it->second.timer.cancel();
    pending_.erase(it);
    if (cb) cb(r.err());
  });
}

void messenger::respond(
    const wire::opened& req, wire::fb::Body type,
    const std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)>& body,
    publish_options o, std::string topic) {
  wire::header h;
  h.correlation_id = req.message()->correlation_id();
  auto msg = wire::build_message(std::move(h), loop_.time(), type, body);
  send(req.sender, msg, o, std::move(topic));
}

std::string messenger::default_topic(const crypto::public_key& recipient) const {
  const auto id = crypto::mailbox_id(recipient);
  return send_on_uplinks_ ? topics_.uplink(id) : topics_.mailbox(id);
}

}  // namespace hmq::core::bus
