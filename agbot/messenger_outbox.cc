#include "agbot/messenger_outbox.h"

namespace hmq::agbot {

void messenger_outbox::send(const core::crypto::public_key& to, fb::Body type,
                            const body_builder& body, uint32_t expiry_s,
                            std::function<void(bool)> done) {
  auto bytes = core::wire::build_message({}, loop_.time(), type, body);
  core::bus::publish_options o;
  o.qos = 1;
  o.message_expiry_s = expiry_s;
  m_.send(to, bytes, o, {}, [done = std::move(done)](core::result<void> r) {
    if (done) done(r.ok());
  });
}

void messenger_outbox::reply(const core::wire::opened& request, fb::Body type,
                             const body_builder& body) {
  core::wire::header h;
  h.correlation_id = request.message()->correlation_id();
  auto bytes = core::wire::build_message(std::move(h), loop_.time(), type, body);
  // Sealed to the authenticated sender and published on the mailbox derived from its key: a
  // reply_to inside the message is never used, so nobody can aim our answers elsewhere.
  m_.send(request.sender, bytes);
}

}  // namespace hmq::agbot
