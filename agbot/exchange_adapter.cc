#include "agbot/exchange_adapter.h"

#include "agbot/errc.h"
#include "exchange_client/ids.h"

namespace hmq::agbot {
namespace {

using exchange_client::client_errc;

// Keeps the exchange's detail; the code says what the engine may do about it.
core::error map_error(const core::error& e) {
  errc code = errc::exchange_rejected;
  if (e.code == exchange_client::make_error_code(client_errc::not_found))
    code = errc::not_found;
  else if (e.code == exchange_client::make_error_code(client_errc::timeout) ||
           e.code == exchange_client::make_error_code(client_errc::stopped) ||
           e.code == exchange_client::make_error_code(client_errc::unavailable) ||
           e.code == exchange_client::make_error_code(client_errc::rate_limited))
    code = errc::exchange_unavailable;
  else if (e.code == exchange_client::make_error_code(client_errc::bad_response))
    code = errc::bad_response;
  return {make_error_code(code), e.message()};
}

exchange_client::client::done done_of(callback<void> cb) {
  return [cb = std::move(cb)](core::result<void> r) {
    if (!r) return cb(map_error(r.err()));
    cb(core::ok());
  };
}

// A get_resource answer of the expected kind, as an object-API copy.
template <typename T>
exchange_client::client::callback<fb::ResourceUnion> resource_cb(fb::Resource kind, callback<T> cb,
                                                                 T* (fb::ResourceUnion::*as)()) {
  return [cb = std::move(cb), kind, as](core::result<fb::ResourceUnion> r) mutable {
    if (!r) return cb(map_error(r.err()));
    if (r->type != kind || !((*r).*as)())
      return cb(core::error{make_error_code(errc::bad_response), "unexpected resource kind"});
    cb(T(*((*r).*as)()));
  };
}

}  // namespace

void exchange_adapter::hello(callback<void> cb) {
  c_.agbot_hello(creds_, done_of(std::move(cb)));
}

void exchange_adapter::get_agbot(callback<fb::AgbotT> cb) {
  c_.get_resource(
      creds_, fb::ResourceKind::agbot, creds_.org, creds_.id,
      resource_cb<fb::AgbotT>(fb::Resource::Agbot, std::move(cb), &fb::ResourceUnion::AsAgbot));
}

void exchange_adapter::search_pattern_nodes(const fb::AgbotPatternT& p, std::string page_token,
                                            uint32_t limit, callback<node_page> cb) {
  c_.search_pattern_nodes(creds_, p.pattern_org, p.pattern, p.node_org, std::move(page_token),
                          limit, [cb = std::move(cb)](core::result<exchange_client::node_page> r) {
                            if (!r) return cb(map_error(r.err()));
                            node_page out;
                            out.nodes = std::move(r->nodes);
                            out.next_page_token = std::move(r->next_page_token);
                            cb(std::move(out));
                          });
}

void exchange_adapter::get_node(std::string org, std::string id, callback<fb::NodeT> cb) {
  c_.get_resource(
      creds_, fb::ResourceKind::node, std::move(org), std::move(id),
      resource_cb<fb::NodeT>(fb::Resource::Node, std::move(cb), &fb::ResourceUnion::AsNode));
}

void exchange_adapter::get_pattern(std::string org, std::string name, callback<fb::PatternT> cb) {
  c_.get_resource(creds_, fb::ResourceKind::pattern, std::move(org), std::move(name),
                  resource_cb<fb::PatternT>(fb::Resource::Pattern, std::move(cb),
                                            &fb::ResourceUnion::AsPattern));
}

void exchange_adapter::get_service(std::string org, std::string url, std::string version,
                                   std::string arch, callback<fb::ServiceT> cb) {
  c_.get_resource(creds_, fb::ResourceKind::service, std::move(org),
                  exchange_client::service_id(url, version, arch),
                  resource_cb<fb::ServiceT>(fb::Resource::Service, std::move(cb),
                                            &fb::ResourceUnion::AsService));
}

void exchange_adapter::list_service_versions(std::string org, std::string url, std::string arch,
                                             callback<std::vector<std::string>> cb) {
  c_.list_all_resources(
      creds_, fb::ResourceKind::service, std::move(org),
      [cb = std::move(cb), url = std::move(url),
       arch = std::move(arch)](core::result<std::vector<fb::ResourceUnion>> r) {
        if (!r) return cb(map_error(r.err()));
        std::vector<std::string> versions;
        for (auto& item : *r) {
          const auto* s = item.AsService();
          if (s && s->url == url && s->arch == arch) versions.push_back(s->version);
        }
        cb(std::move(versions));
      },
      10'000);
}

void exchange_adapter::get_node_key(std::string org, std::string id,
                                    callback<core::crypto::public_key> cb) {
  c_.get_public_key(creds_, fb::ResourceKind::node, std::move(org), std::move(id),
                    [cb = std::move(cb)](core::result<exchange_client::key_info> r) {
                      if (!r) return cb(map_error(r.err()));
                      cb(r->public_key);
                    });
}

void exchange_adapter::put_agreement(const fb::AgreementRecordT& record, callback<void> cb) {
  c_.put_agreement(creds_, record, done_of(std::move(cb)));
}

void exchange_adapter::delete_agreement(std::string node_org, std::string node_id,
                                        std::string agreement_id, callback<void> cb) {
  c_.delete_agreement(creds_, std::move(node_org), std::move(node_id), std::move(agreement_id),
                      done_of(std::move(cb)));
}

void exchange_adapter::put_rollout_status(const fb::RolloutStatusT& status, callback<void> cb) {
  c_.put_rollout_status(creds_, status, done_of(std::move(cb)));
}

}  // namespace hmq::agbot
