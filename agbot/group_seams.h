#pragma once

#include "agbot/seams.h"
#include "core/store/group_commit.h"

// Group commit in the agbot (docs/PERFORMANCE.md): agreement_store writes join one transaction
// per loop turn, so what announces a write (a Proposal, ReplyAck or Cancel to the node, a
// PutAgreement/DeleteAgreement to the exchange) must wait for that transaction's COMMIT. These
// decorators around the engine's two seams hold such calls while a group is open and make them
// after it committed; if the COMMIT failed they are not made (outbox: done(false); exchange:
// an error), as if the agbot had stopped before them. Reads from the exchange pass through.
// Loop thread only.
namespace hmq::agbot {

class group_outbox final : public outbox {
 public:
  group_outbox(outbox& inner, core::store::group_commit& g) : inner_(inner), group_(g) {}

  void send(const core::crypto::public_key& to, fb::Body type, const body_builder& body,
            uint32_t expiry_s, std::function<void(bool)> done) override;
  void reply(const core::wire::opened& request, fb::Body type, const body_builder& body) override;

 private:
  outbox& inner_;
  core::store::group_commit& group_;
};

class group_exchange final : public exchange_api {
 public:
  group_exchange(exchange_api& inner, core::store::group_commit& g) : inner_(inner), group_(g) {}

  void hello(callback<void> cb) override { inner_.hello(std::move(cb)); }
  void get_agbot(callback<fb::AgbotT> cb) override { inner_.get_agbot(std::move(cb)); }
  void search_pattern_nodes(const fb::AgbotPatternT& p, std::string page_token, uint32_t limit,
                            callback<node_page> cb) override {
    inner_.search_pattern_nodes(p, std::move(page_token), limit, std::move(cb));
  }
  void get_node(std::string org, std::string id, callback<fb::NodeT> cb) override {
    inner_.get_node(std::move(org), std::move(id), std::move(cb));
  }
  void get_pattern(std::string org, std::string name, callback<fb::PatternT> cb) override {
    inner_.get_pattern(std::move(org), std::move(name), std::move(cb));
  }
  void get_service(std::string org, std::string url, std::string version, std::string arch,
                   callback<fb::ServiceT> cb) override {
    inner_.get_service(std::move(org), std::move(url), std::move(version), std::move(arch),
                       std::move(cb));
  }
  void list_service_versions(std::string org, std::string url, std::string arch,
                             callback<std::vector<std::string>> cb) override {
    inner_.list_service_versions(std::move(org), std::move(url), std::move(arch), std::move(cb));
  }
  void get_node_key(std::string org, std::string id,
                    callback<core::crypto::public_key> cb) override {
    inner_.get_node_key(std::move(org), std::move(id), std::move(cb));
  }
  void put_agreement(const fb::AgreementRecordT& record, callback<void> cb) override;
  void delete_agreement(std::string node_org, std::string node_id, std::string agreement_id,
                        callback<void> cb) override;
  void put_rollout_status(const fb::RolloutStatusT& status, callback<void> cb) override;

 private:
  exchange_api& inner_;
  core::store::group_commit& group_;
};

}  // namespace hmq::agbot
