#pragma once

#include "agbot/seams.h"
#include "exchange_client/client.h"

// exchange_api over the shared exchange client library (exchange/client.h), authenticated as
// this agbot. Maps client_errc to agbot::errc. Loop thread only.
namespace hmq::agbot {

class exchange_adapter final : public exchange_api {
 public:
  exchange_adapter(exchange_client::client& c, exchange_client::credentials creds)
      : c_(c), creds_(std::move(creds)) {}

  void hello(callback<void> cb) override;
  void get_agbot(callback<fb::AgbotT> cb) override;
  void search_pattern_nodes(const fb::AgbotPatternT& p, std::string page_token, uint32_t limit,
                            callback<node_page> cb) override;
  void get_node(std::string org, std::string id, callback<fb::NodeT> cb) override;
  void get_pattern(std::string org, std::string name, callback<fb::PatternT> cb) override;
  void get_service(std::string org, std::string url, std::string version, std::string arch,
                   callback<fb::ServiceT> cb) override;
  void list_service_versions(std::string org, std::string url, std::string arch,
                             callback<std::vector<std::string>> cb) override;
  void get_node_key(std::string org, std::string id,
                    callback<core::crypto::public_key> cb) override;
  void put_agreement(const fb::AgreementRecordT& record, callback<void> cb) override;
  void delete_agreement(std::string node_org, std::string node_id, std::string agreement_id,
                        callback<void> cb) override;
  void put_rollout_status(const fb::RolloutStatusT& status, callback<void> cb) override;

 private:
  exchange_client::client& c_;
  exchange_client::credentials creds_;
};

}  // namespace hmq::agbot
