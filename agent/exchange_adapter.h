#pragma once

#include "agent/seams.h"
#include "exchange_client/client.h"

// Production adapter for the agent's exchange seam over the exchange client library.
namespace hmq::agent {

class exchange_adapter final : public exchange_api {
 public:
  explicit exchange_adapter(hmq::exchange_client::client& c) : c_(c) {}
  void register_node(const node_registration& r, done_fn cb) override;
  void unregister_node(const node_identity& n, done_fn cb) override;
  void put_agreement(const node_identity& n, const fb::AgreementRecordT& rec, done_fn cb) override;
  void delete_agreement(const node_identity& n, const std::string& agreement_id,
                        done_fn cb) override;
  void get_pattern(const node_identity& n, const std::string& org, const std::string& name,
                   std::function<void(result<fb::PatternT>)> cb) override;
  void get_agbot_key(const node_identity& n, const std::string& org, const std::string& id,
                     std::function<void(result<crypto::public_key>)> cb) override;
  void put_node_status(const node_identity& n, const fb::StatusReportT& report,
                       done_fn cb) override;

 private:
  hmq::exchange_client::client& c_;
};

}  // namespace hmq::agent
