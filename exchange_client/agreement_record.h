#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "schema/types_generated.h"

// The exchange's record of a finalized agreement (PutAgreement). Both parties put it, the agbot
// when it finalizes and the agent when it gets the ReplyAck, and the exchange keeps the last one
// written: so both build it here, the one place that says what the record holds.
namespace hmq::exchange_client {

// `a` is either party's own agreement: it names the agreement (`id`), its `pattern`
// ("org/name") and top-level service (`service_org`, `service_url`, `service_version`). The
// node, the agbot ("org/id") and the finalize time are passed in, because the two parties keep
// them in different places.
template <typename Agreement>
::hmq::wire::fb::AgreementRecordT finalized_agreement_record(const Agreement& a,
                                                             std::string node_org,
                                                             std::string node_id, std::string agbot,
                                                             int64_t finalized_ms) {
  ::hmq::wire::fb::AgreementRecordT rec;
  rec.agreement_id = a.id;
  rec.node_org = std::move(node_org);
  rec.node_id = std::move(node_id);
  rec.pattern = a.pattern;
  rec.service_url = a.service_url;
  rec.service_org = a.service_org;
  rec.service_version = a.service_version;
  rec.agbot = std::move(agbot);
  rec.state = ::hmq::wire::fb::AgreementState::finalized;
  rec.updated_ms = finalized_ms;
  return rec;
}

}  // namespace hmq::exchange_client
