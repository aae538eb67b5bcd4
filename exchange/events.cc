#include "exchange/events.h"

#include "core/wire/codec.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

using exchange_client::service_id;
using exchange_client::split_qualified;
namespace {

result<std::vector<addressed_event>> stamp(db& d, const std::vector<agbot_address>& to,
                                           const fb::EventT& e) {
  std::vector<addressed_event> out;
  out.reserve(to.size());
  for (const auto& a : to) {
    auto seq = d.next_event_seq(a.org, a.id);
    if (!seq) return seq.err();
    addressed_event ev{a.public_key, a.mailbox, e};
    ev.event.seq = *seq;
    auto id = d.outbox_add(ev.recipient, ev.mailbox, ev.event);
    if (!id) return id.err();
    ev.outbox_id = *id;
    out.push_back(std::move(ev));
  }
  return out;
}

}  // namespace

result<std::vector<addressed_event>> address_node_event(db& d, fb::EventKind kind,
                                                        const fb::NodeT& node,
                                                        std::string_view pattern) {
  auto q = split_qualified(pattern);
  if (!q) return std::vector<addressed_event>{};
  auto to = d.agbots_serving_pattern(q->org, q->name, node.org);
  if (!to) return to.err();
  fb::EventT e;
  e.kind = kind;
  e.org = node.org;
  e.id = node.id;
  e.pattern = std::string(pattern);
  e.node_public_key = node.public_key;
  e.node_mailbox = node.mailbox;
  e.node_arch = node.arch;
  if (kind == fb::EventKind::node_registered) {
    e.has_node_user_inputs = true;
    // Deep copies: the agbot needs these to propose and would otherwise fetch the node.
    for (const auto& ui : node.user_inputs)
      if (ui) e.node_user_inputs.push_back(std::make_unique<fb::ServiceUserInputT>(*ui));
  }
  return stamp(d, *to, e);
}

result<std::vector<addressed_event>> address_pattern_event(db& d, fb::EventKind kind,
                                                           std::string_view org,
                                                           std::string_view name) {
  auto to = d.agbots_serving_pattern(org, name, "");
  if (!to) return to.err();
  fb::EventT e;
  e.kind = kind;
  e.org = std::string(org);
  e.id = std::string(name);
  e.pattern = std::string(org) + "/" + std::string(name);
  return stamp(d, *to, e);
}

result<std::vector<addressed_event>> address_service_event(db& d, fb::EventKind kind,
                                                           std::string_view org,
                                                           std::string_view url,
                                                           std::string_view id) {
  auto to = d.agbots_serving_service(org, url);
  if (!to) return to.err();
  fb::EventT e;
  e.kind = kind;
  e.org = std::string(org);
  e.id = std::string(id);
  return stamp(d, *to, e);
}

std::vector<uint8_t> event_message(const fb::EventT& e, const core::loop::clock& clock) {
  return core::wire::build_message(
      {}, clock, fb::Body::Event,
      [&](flatbuffers::FlatBufferBuilder& b) { return fb::Event::Pack(b, &e).Union(); });
}

void event_publisher::send(const addressed_event& ev) {
  auto msg = event_message(ev.event, clock_);
  core::bus::publish_options o;
  o.qos = 1;
  messenger_.send(ev.recipient, msg, o, {}, [this, id = ev.outbox_id](core::result<void> r) {
    // Not acknowledged (stopped, broker gone): the row stays and goes out at the next start.
    if (!r || id <= 0) return;
    if (group_)
      group_->add([this, id] { (void)db_.outbox_delete(id); });
    else
      (void)db_.outbox_delete(id);
  });
  ++published_;
}

void event_publisher::publish(const std::vector<addressed_event>& events) {
  for (const auto& ev : events) send(ev);
}

void event_publisher::publish_pending() {
  auto pending = db_.outbox_all();
  if (!pending) return;
  for (auto& p : *pending) send(addressed_event{p.recipient, p.mailbox, std::move(p.event), p.id});
}

}  // namespace hmq::exchange
