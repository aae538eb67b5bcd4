#include "agbot/group_seams.h"

#include <memory>
#include <utility>

namespace hmq::agbot {

void group_outbox::send(const core::crypto::public_key& to, fb::Body type, const body_builder& body,
                        uint32_t expiry_s, std::function<void(bool)> done) {
  group_.after_commit([this, to, type, body, expiry_s,
                       done = std::move(done)](const core::result<void>& committed) mutable {
    if (!committed) {
      if (done) done(false);
      return;
    }
    inner_.send(to, type, body, expiry_s, std::move(done));
  });
}

void group_outbox::reply(const core::wire::opened& request, fb::Body type,
                         const body_builder& body) {
  if (!group_.open()) return inner_.reply(request, type, body);
  group_.after_commit([this, request, type, body](const core::result<void>& committed) {
    if (committed) inner_.reply(request, type, body);
  });
}

void group_exchange::put_agreement(const fb::AgreementRecordT& record, callback<void> cb) {
  // Deep copy: the record's tables are owned by the caller's object.
  auto copy = std::make_shared<fb::AgreementRecordT>(record);
  group_.after_commit(
      [this, copy, cb = std::move(cb)](const core::result<void>& committed) mutable {
        if (!committed) return cb(committed.err());
        inner_.put_agreement(*copy, std::move(cb));
      });
}

void group_exchange::delete_agreement(std::string node_org, std::string node_id,
                                      std::string agreement_id, callback<void> cb) {
  group_.after_commit([this, node_org = std::move(node_org), node_id = std::move(node_id),
                       agreement_id = std::move(agreement_id),
                       cb = std::move(cb)](const core::result<void>& committed) mutable {
    if (!committed) return cb(committed.err());
    inner_.delete_agreement(std::move(node_org), std::move(node_id), std::move(agreement_id),
                            std::move(cb));
  });
}

void group_exchange::put_rollout_status(const fb::RolloutStatusT& status, callback<void> cb) {
  auto copy = std::make_shared<fb::RolloutStatusT>(status);
  group_.after_commit(
      [this, copy, cb = std::move(cb)](const core::result<void>& committed) mutable {
        if (!committed) return cb(committed.err());
        inner_.put_rollout_status(*copy, std::move(cb));
      });
}

}  // namespace hmq::agbot
