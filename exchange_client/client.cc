#include "exchange_client/client.h"

#include <memory>

namespace hmq::exchange_client {

namespace {

class client_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "exchange"; }
  std::string message(int c) const override {
    switch (static_cast<client_errc>(c)) {
      case client_errc::ok:
        return "ok";
      case client_errc::not_found:
        return "not found";
      case client_errc::already_exists:
        return "already exists";
      case client_errc::unauthorized:
        return "unauthorized";
      case client_errc::forbidden:
        return "forbidden";
      case client_errc::invalid_argument:
        return "invalid argument";
      case client_errc::internal:
        return "internal error";
      case client_errc::rate_limited:
        return "rate limited";
      case client_errc::conflict:
        return "conflict";
      case client_errc::unavailable:
        return "unavailable";
      case client_errc::timeout:
        return "no answer from the exchange";
      case client_errc::stopped:
        return "stopped";
      case client_errc::bad_response:
        return "bad response";
    }
    return "unknown";
  }
};

core::error make_error(client_errc c, std::string detail) {
  return {make_error_code(c), std::move(detail)};
}

flatbuffers::Offset<fb::Auth> pack_auth(flatbuffers::FlatBufferBuilder& b, const credentials& a) {
  return fb::CreateAuthDirect(b, a.kind, a.org.c_str(), a.id.c_str(), a.secret.c_str());
}

fb::ResourceKeyT key_of(fb::ResourceKind kind, std::string org, std::string id) {
  fb::ResourceKeyT k;
  k.kind = kind;
  k.org = std::move(org);
  k.id = std::move(id);
  return k;
}

fb::ResourceUnion unpack_resource(const fb::ResourceItem* item) {
  fb::ResourceUnion u;
  u.type = item->resource_type();
  u.value = fb::ResourceUnion::UnPack(item->resource(), item->resource_type(), nullptr);
  return u;
}

// Every table of a (possibly absent) FlatBuffers vector in its object-API form. UnPackTo, not
// UnPack: the latter hands back an owning raw pointer.
template <typename T, typename Vector>
std::vector<T> unpack_all(const Vector* v) {
  std::vector<T> out;
  if (!v) return out;
  out.reserve(v->size());
  for (const auto* item : *v) {
    T t;
    if (item) item->UnPackTo(&t);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

const std::error_category& client_category() {
  static const client_category_impl c;
  return c;
}
std::error_code make_error_code(client_errc e) {
  return {static_cast<int>(e), client_category()};
}

bool is_refusal(std::error_code ec) {
  return ec.category() == client_category() &&
         ec.value() >= static_cast<int>(client_errc::not_found) &&
         ec.value() <= static_cast<int>(client_errc::unavailable);
}

client_errc from_status(fb::RpcStatus s) {
  auto v = static_cast<int>(s);
  if (v >= static_cast<int>(fb::RpcStatus::not_found) &&
      v <= static_cast<int>(fb::RpcStatus::unavailable)) {
    return static_cast<client_errc>(v);
  }
  return s == fb::RpcStatus::ok ? client_errc::ok : client_errc::bad_response;
}

// The loop is not kept: every timer and callback runs through the messenger, which is bound to
// the same loop. The parameter stays so each loop-bound component is built alike.
client::client(core::loop::scheduler& /*loop*/, core::bus::messenger& m,
               core::crypto::public_key exchange_key, core::bus::topics t)
    : messenger_(m), exchange_key_(exchange_key), topics_(std::move(t)) {}

void client::call(const credentials& auth, const op_builder& op, std::chrono::milliseconds timeout,
                  callback<rpc_reply> cb) {
  auto body = [&](flatbuffers::FlatBufferBuilder& b) -> flatbuffers::Offset<void> {
    auto a = pack_auth(b, auth);
    auto [type, off] = op(b);
    return fb::CreateRpcRequest(b, a, type, off).Union();
  };
  messenger_.request(
      exchange_key_, topics_.rpc(), core::wire::header{}, fb::Body::RpcRequest, body, timeout,
      [cb = std::move(cb)](result<core::wire::opened> r) {
        if (!r) {
          // messenger.h declares no make_error_code(rpc_errc), so compare by category: anything
          // not from the bus client itself is the messenger's rpc_errc.
          auto code = r.code();
          if (code.category() == core::bus::category()) {
            return cb(make_error(client_errc::timeout,
                                 "cannot send to the exchange: " + r.err().message()));
          }
          if (code.value() == static_cast<int>(core::bus::rpc_errc::stopped)) {
            return cb(make_error(client_errc::stopped, r.err().detail));
          }
          if (code.value() == static_cast<int>(core::bus::rpc_errc::timeout)) {
            return cb(make_error(client_errc::timeout,
                                 "no answer from the exchange in time (is the broker reachable and "
                                 "hmq-exchange running?)"));
          }
          return cb(r.err());
        }
        const auto* resp = r->message()->body_as_RpcResponse();
        if (!resp) return cb(make_error(client_errc::bad_response, "answer is not an RpcResponse"));
        if (resp->status() != fb::RpcStatus::ok) {
          std::string detail = resp->error_message() ? resp->error_message()->str() : std::string();
          if (resp->error_field() && resp->error_field()->size() &&
              detail.find(resp->error_field()->str()) == std::string::npos) {
            detail += " (field '" + resp->error_field()->str() + "')";
          }
          if (detail.empty()) detail = fb::EnumNameRpcStatus(resp->status());
          return cb(make_error(from_status(resp->status()), std::move(detail)));
        }
        cb(rpc_reply(std::move(r).value()));
      });
}

void client::call(const credentials& auth, const fb::RpcOpUnion& op,
                  std::chrono::milliseconds timeout, callback<rpc_reply> cb) {
  call(
      auth,
      [&op](flatbuffers::FlatBufferBuilder& b) { return std::make_pair(op.type, op.Pack(b)); },
      timeout, std::move(cb));
}

void client::call_void(const credentials& auth, fb::RpcOpUnion op, done cb) {
  call(auth, op, timeout_, [cb = std::move(cb)](result<rpc_reply> r) {
    if (!r) return cb(r.err());
    cb(core::ok());
  });
}

void client::create_resource(const credentials& auth, const fb::ResourceUnion& r, done cb) {
  fb::CreateResourceT op;
  op.resource = r;
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call_void(auth, std::move(u), std::move(cb));
}

void client::update_resource(const credentials& auth, const fb::ResourceUnion& r, done cb) {
  fb::UpdateResourceT op;
  op.resource = r;
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call_void(auth, std::move(u), std::move(cb));
}

void client::get_resource(const credentials& auth, fb::ResourceKind kind, std::string org,
                          std::string id, callback<fb::ResourceUnion> cb) {
  fb::GetResourceT op;
  op.key = std::make_unique<fb::ResourceKeyT>(key_of(kind, std::move(org), std::move(id)));
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call(auth, u, timeout_, [cb = std::move(cb)](result<rpc_reply> r) {
    if (!r) return cb(r.err());
    const auto* item = r->result_as<fb::ResourceItem>();
    if (!item || item->resource_type() == fb::Resource::NONE) {
      return cb(make_error(client_errc::bad_response, "get: answer carries no resource"));
    }
    cb(unpack_resource(item));
  });
}

void client::delete_resource(const credentials& auth, fb::ResourceKind kind, std::string org,
                             std::string id, done cb) {
  fb::DeleteResourceT op;
  op.key = std::make_unique<fb::ResourceKeyT>(key_of(kind, std::move(org), std::move(id)));
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call_void(auth, std::move(u), std::move(cb));
}

void client::list_resources(const credentials& auth, fb::ResourceKind kind, std::string org,
                            std::string page_token, uint32_t limit, callback<resource_page> cb) {
  fb::ListResourcesT op;
  op.kind = kind;
  op.org = std::move(org);
  op.page_token = std::move(page_token);
  op.limit = limit;
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call(auth, u, timeout_, [cb = std::move(cb)](result<rpc_reply> r) {
    if (!r) return cb(r.err());
    const auto* list = r->result_as<fb::ResourceList>();
    if (!list)
      return cb(make_error(client_errc::bad_response, "list: answer carries no resource list"));
    resource_page page;
    if (list->items()) {
      for (const auto* item : *list->items()) {
        if (!item || item->resource_type() == fb::Resource::NONE) continue;
        page.items.push_back(unpack_resource(item));
      }
    }
    if (list->next_page_token()) page.next_page_token = list->next_page_token()->str();
    cb(std::move(page));
  });
}

void client::list_all_resources(const credentials& auth, fb::ResourceKind kind, std::string org,
                                callback<std::vector<fb::ResourceUnion>> cb, size_t max_items) {
  list_page(auth, kind, std::move(org), {}, max_items,
            std::make_shared<std::vector<fb::ResourceUnion>>(), std::move(cb));
}

void client::list_page(const credentials& auth, fb::ResourceKind kind, std::string org,
                       std::string token, size_t max_items,
                       std::shared_ptr<std::vector<fb::ResourceUnion>> acc,
                       callback<std::vector<fb::ResourceUnion>> cb) {
  list_resources(
      auth, kind, org, token, 0,
      [this, auth, kind, org, max_items, acc, cb = std::move(cb),
       token](result<resource_page> r) mutable {
        if (!r) return cb(r.err());
        for (auto& i : r->items) acc->push_back(std::move(i));
        // A token that does not move on would loop forever: treat it as the end.
        if (r->next_page_token.empty() || r->next_page_token == token || acc->size() >= max_items) {
          return cb(std::move(*acc));
        }
        list_page(auth, kind, std::move(org), r->next_page_token, max_items, acc, std::move(cb));
      });
}

void client::register_node(const credentials& node_auth, std::string pattern, std::string arch,
                           std::string name, std::vector<fb::ServiceUserInputT> user_inputs,
                           callback<rpc_reply> cb) {
  fb::RegisterNodeT op;
  op.pattern = std::move(pattern);
  op.arch = std::move(arch);
  op.name = std::move(name);
  for (auto& ui : user_inputs)
    op.user_inputs.push_back(std::make_unique<fb::ServiceUserInputT>(std::move(ui)));
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call(node_auth, u, timeout_, std::move(cb));
}

void client::unregister_node(const credentials& node_auth, done cb) {
  fb::RpcOpUnion u;
  u.Set(fb::UnregisterNodeT{});
  call_void(node_auth, std::move(u), std::move(cb));
}

void client::put_agreement(const credentials& auth, const fb::AgreementRecordT& rec, done cb) {
  fb::PutAgreementT op;
  op.record = std::make_unique<fb::AgreementRecordT>(rec);
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call_void(auth, std::move(u), std::move(cb));
}

void client::list_agreements(const credentials& auth, std::string node_org, std::string node_id,
                             callback<std::vector<fb::AgreementRecordT>> cb) {
  fb::ListAgreementsT op;
  op.node_org = std::move(node_org);
  op.node_id = std::move(node_id);
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call(auth, u, timeout_, [cb = std::move(cb)](result<rpc_reply> r) {
    if (!r) return cb(r.err());
    const auto* list = r->result_as<fb::AgreementList>();
    if (!list)
      return cb(make_error(client_errc::bad_response,
                           "list agreements: answer carries no agreement list"));
    cb(unpack_all<fb::AgreementRecordT>(list->records()));
  });
}

void client::put_node_status(const credentials& node_auth, const fb::StatusReportT& report,
                             done cb) {
  fb::PutNodeStatusT op;
  op.report = std::make_unique<fb::StatusReportT>(report);
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call_void(node_auth, std::move(u), std::move(cb));
}

void client::get_node_status(const credentials& auth, std::string node_org, std::string node_id,
                             callback<fb::NodeStatusT> cb) {
  fb::GetNodeStatusT op;
  op.node_org = std::move(node_org);
  op.node_id = std::move(node_id);
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call(auth, u, timeout_, [cb = std::move(cb)](result<rpc_reply> r) {
    if (!r) return cb(r.err());
    const auto* ns = r->result_as<fb::NodeStatus>();
    if (!ns)
      return cb(
          make_error(client_errc::bad_response, "node status: answer carries no node status"));
    fb::NodeStatusT t;
    ns->UnPackTo(&t);
    cb(std::move(t));
  });
}

void client::delete_agreement(const credentials& auth, std::string node_org, std::string node_id,
                              std::string agreement_id, done cb) {
  fb::DeleteAgreementT op;
  op.node_org = std::move(node_org);
  op.node_id = std::move(node_id);
  op.agreement_id = std::move(agreement_id);
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call_void(auth, std::move(u), std::move(cb));
}

void client::get_public_key(const credentials& auth, fb::ResourceKind kind, std::string org,
                            std::string id, callback<key_info> cb) {
  fb::GetPublicKeyT op;
  op.key = std::make_unique<fb::ResourceKeyT>(key_of(kind, std::move(org), std::move(id)));
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call(auth, u, timeout_, [cb = std::move(cb)](result<rpc_reply> r) {
    if (!r) return cb(r.err());
    const auto* k = r->result_as<fb::KeyInfo>();
    if (!k || !k->public_key() || k->public_key()->size() != core::crypto::public_key_size) {
      return cb(make_error(client_errc::bad_response, "public key: answer carries no 32-byte key"));
    }
    key_info out;
    std::copy(k->public_key()->begin(), k->public_key()->end(), out.public_key.begin());
    if (k->mailbox()) out.mailbox = k->mailbox()->str();
    cb(std::move(out));
  });
}

void client::search_pattern_nodes(const credentials& auth, std::string pattern_org,
                                  std::string pattern, std::string node_org, std::string page_token,
                                  uint32_t limit, callback<node_page> cb) {
  fb::SearchPatternNodesT op;
  op.pattern_org = std::move(pattern_org);
  op.pattern = std::move(pattern);
  op.node_org = std::move(node_org);
  op.page_token = std::move(page_token);
  op.limit = limit;
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call(auth, u, timeout_, [cb = std::move(cb)](result<rpc_reply> r) {
    if (!r) return cb(r.err());
    const auto* list = r->result_as<fb::NodeList>();
    if (!list)
      return cb(make_error(client_errc::bad_response, "search: answer carries no node list"));
    node_page page;
    if (list->nodes()) {
      for (const auto* n : *list->nodes()) {
        fb::NodeT t;
        n->UnPackTo(&t);
        page.nodes.push_back(std::move(t));
      }
    }
    if (list->next_page_token()) page.next_page_token = list->next_page_token()->str();
    cb(std::move(page));
  });
}

void client::agbot_add_pattern(const credentials& auth, std::string agbot_org, std::string agbot_id,
                               const fb::AgbotPatternT& p, done cb) {
  fb::AgbotAddPatternT op;
  op.agbot_org = std::move(agbot_org);
  op.agbot_id = std::move(agbot_id);
  op.pattern = std::make_unique<fb::AgbotPatternT>(p);
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call_void(auth, std::move(u), std::move(cb));
}

void client::agbot_remove_pattern(const credentials& auth, std::string agbot_org,
                                  std::string agbot_id, const fb::AgbotPatternT& p, done cb) {
  fb::AgbotRemovePatternT op;
  op.agbot_org = std::move(agbot_org);
  op.agbot_id = std::move(agbot_id);
  op.pattern = std::make_unique<fb::AgbotPatternT>(p);
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call_void(auth, std::move(u), std::move(cb));
}

void client::agbot_hello(const credentials& auth, done cb) {
  fb::RpcOpUnion u;
  u.Set(fb::AgbotHelloT{});
  call_void(auth, std::move(u), std::move(cb));
}

void client::put_rollout_status(const credentials& auth, const fb::RolloutStatusT& status,
                                done cb) {
  fb::PutRolloutStatusT op;
  op.status = std::make_unique<fb::RolloutStatusT>(status);
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call_void(auth, std::move(u), std::move(cb));
}

void client::get_rollout_status(const credentials& auth, std::string pattern_org,
                                std::string pattern, callback<std::vector<fb::RolloutStatusT>> cb) {
  fb::GetRolloutStatusT op;
  op.pattern_org = std::move(pattern_org);
  op.pattern = std::move(pattern);
  fb::RpcOpUnion u;
  u.Set(std::move(op));
  call(auth, u, timeout_, [cb = std::move(cb)](result<rpc_reply> r) {
    if (!r) return cb(r.err());
    const auto* list = r->result_as<fb::RolloutStatusList>();
    if (!list)
      return cb(
          make_error(client_errc::bad_response, "rollout status: answer carries no status list"));
    cb(unpack_all<fb::RolloutStatusT>(list->statuses()));
  });
}

}  // namespace hmq::exchange_client
