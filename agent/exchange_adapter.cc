#include "agent/exchange_adapter.h"

namespace hmq::agent {
namespace {

hmq::exchange_client::credentials creds(const node_identity& n) {
  return hmq::exchange_client::credentials::node(n.org, n.id, n.token);
}

}  // namespace

void exchange_adapter::register_node(const node_registration& r, done_fn cb) {
  std::vector<fb::ServiceUserInputT> inputs;
  for (const auto& u : r.user_inputs) inputs.push_back(u);  // object API types copy deeply
  c_.register_node(creds(r.node), r.pattern, r.arch, r.node.id, std::move(inputs),
                   [cb = std::move(cb)](result<hmq::exchange_client::rpc_reply> res) {
                     if (!res) return cb(res.err());
                     cb(core::ok());
                   });
}

void exchange_adapter::unregister_node(const node_identity& n, done_fn cb) {
  c_.unregister_node(creds(n), std::move(cb));
}

void exchange_adapter::put_agreement(const node_identity& n, const fb::AgreementRecordT& rec,
                                     done_fn cb) {
  c_.put_agreement(creds(n), rec, std::move(cb));
}

void exchange_adapter::put_node_status(const node_identity& n, const fb::StatusReportT& report,
                                       done_fn cb) {
  c_.put_node_status(creds(n), report, std::move(cb));
}

void exchange_adapter::delete_agreement(const node_identity& n, const std::string& agreement_id,
                                        done_fn cb) {
  c_.delete_agreement(creds(n), n.org, n.id, agreement_id, [cb = std::move(cb)](result<void> r) {
    if (!r && r.code() == make_error_code(hmq::exchange_client::client_errc::not_found))
      return cb(core::ok());
    cb(std::move(r));
  });
}

void exchange_adapter::get_agbot_key(const node_identity& n, const std::string& org,
                                     const std::string& id,
                                     std::function<void(result<crypto::public_key>)> cb) {
  c_.get_public_key(creds(n), fb::ResourceKind::agbot, org, id,
                    [cb = std::move(cb)](result<hmq::exchange_client::key_info> r) {
                      if (!r) return cb(r.err());
                      cb(r->public_key);
                    });
}

void exchange_adapter::get_pattern(const node_identity& n, const std::string& org,
                                   const std::string& name,
                                   std::function<void(result<fb::PatternT>)> cb) {
  c_.get_resource(
      creds(n), fb::ResourceKind::pattern, org, name,
      [cb = std::move(cb)](result<fb::ResourceUnion> r) {
        if (!r) return cb(r.err());
        const auto* p = r->AsPattern();
        if (!p)
          return cb(core::error{make_error_code(hmq::exchange_client::client_errc::bad_response),
                                "the exchange answered with another resource than a pattern"});
        cb(*p);
      });
}

}  // namespace hmq::agent
