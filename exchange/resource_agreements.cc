// Agreement records of a node: put, list, delete. The node itself, its org's writers and the
// agbots that serve its pattern may touch them (authority::may_touch_agreements).
#include <algorithm>

#include "exchange/handler.h"
#include "exchange/validate.h"

namespace hmq::exchange {

step handler::put_agreement(const fb::PutAgreement& op) {
  if (!op.record()) return invalid("record", "required");
  fb::AgreementRecordT r;
  op.record()->UnPackTo(&r);
  if (r.agreement_id.empty() || r.agreement_id.size() > 128 ||
      !std::all_of(r.agreement_id.begin(), r.agreement_id.end(),
                   [](char c) { return digit(c) || (c >= 'a' && c <= 'f'); }))
    return invalid("record.agreement_id", "must be 1 to 128 lowercase hex digits");
  HMQ_CHECK(check_id("record.node_org", r.node_org));
  HMQ_CHECK(check_id("record.node_id", r.node_id));
  if (!r.pattern.empty()) HMQ_CHECK(check_qualified("record.pattern", r.pattern));
  if (!r.service_url.empty()) HMQ_CHECK(check_url("record.service_url", r.service_url));
  if (!r.service_org.empty()) HMQ_CHECK(check_id("record.service_org", r.service_org));
  if (!r.service_version.empty())
    HMQ_CHECK(check_version("record.service_version", r.service_version));
  if (!r.agbot.empty()) HMQ_CHECK(check_qualified("record.agbot", r.agbot));
  if (r.state == fb::AgreementState::unspecified || r.state > fb::AgreementState::cancelled)
    return invalid("record.state", "must be one of proposed, accepted, finalized, cancelled");
  r.updated_ms = s_.clock_.now_ms();
  HMQ_CHECK(tx([&]() -> step {
    std::optional<fb::NodeT> node;
    HMQ_CHECK(auth_.may_touch_agreements(r.node_org, r.node_id, node));
    if (auto e = db_.agreement_put(r); !e) return internal(e.err());
    return {};
  }));
  fb::AgreementListT l;
  l.records.push_back(std::make_unique<fb::AgreementRecordT>(std::move(r)));
  set_result(std::move(l));
  return {};
}

step handler::list_agreements(const fb::ListAgreements& op) {
  std::string org = str(op.node_org()), id = str(op.node_id());
  HMQ_CHECK(check_id("node_org", org));
  HMQ_CHECK(check_id("node_id", id));
  std::optional<fb::NodeT> node;
  HMQ_CHECK(auth_.may_touch_agreements(org, id, node));
  auto rows = db_.agreement_list(org, id);
  if (!rows) return internal(rows.err());
  fb::AgreementListT l;
  for (auto& r : *rows) l.records.push_back(std::make_unique<fb::AgreementRecordT>(std::move(r)));
  set_result(std::move(l));
  return {};
}

step handler::delete_agreement(const fb::DeleteAgreement& op) {
  std::string org = str(op.node_org()), id = str(op.node_id()), aid = str(op.agreement_id());
  HMQ_CHECK(check_id("node_org", org));
  HMQ_CHECK(check_id("node_id", id));
  HMQ_CHECK(check_id("agreement_id", aid));
  HMQ_CHECK(tx([&]() -> step {
    std::optional<fb::NodeT> node;
    HMQ_CHECK(auth_.may_touch_agreements(org, id, node));
    auto d = db_.agreement_delete(org, id, aid);
    if (!d) return internal(d.err());
    if (!*d) return not_found("agreement", org + "/" + id + "/" + aid);
    return {};
  }));
  set_empty();
  return {};
}
}  // namespace hmq::exchange
