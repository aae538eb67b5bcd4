#include "agent/messenger_outbox.h"

#include "core/wire/codec.h"

namespace hmq::agent {

void messenger_outbox::send(const crypto::public_key& to, fb::Body type, const body_builder& body,
                            done_fn done) {
  auto bytes = core::wire::build_message(core::wire::header{}, clock_, type, body);
  core::bus::publish_options o;
  o.qos = 1;
  // A Reply nobody reads in time is useless (the agbot has given up); a Cancel must arrive.
  if (type == fb::Body::Reply || type == fb::Body::AgreementVerifyReply)
    o.message_expiry_s = expiry_s_;
  m_.send(to, bytes, o, {}, std::move(done));
}

}  // namespace hmq::agent
