// Patterns: create, update, get, delete; every change is an event for the agbots serving it.
#include "exchange/handler.h"
#include "exchange/validate.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

using exchange_client::service_id;

step handler::put_pattern(const void* in, bool insert) {
  auto p = unpack<fb::Pattern>(in);
  HMQ_CHECK(check_pattern(p));
  std::string key = p.org + "/" + p.name;
  HMQ_CHECK(may_put(fb::ResourceKind::pattern, insert, p.org, p.name));
  HMQ_CHECK(tx([&]() -> step {
    HMQ_CHECK(need_org(p.org));
    auto cur = db_.blob_get(table::patterns, p.org, p.name);
    if (!cur) return internal(cur.err());
    HMQ_CHECK(expect_existing(insert, bool(*cur), "pattern", key));
    // Every referenced service version must exist and be readable from this org.
    for (size_t i = 0; i < p.services.size(); ++i) {
      const auto& ps = *p.services[i];
      for (size_t j = 0; j < ps.service_versions.size(); ++j) {
        std::string f = "services[" + std::to_string(i) + "].service_versions[" +
                        std::to_string(j) + "].version";
        const auto& v = ps.service_versions[j]->version;
        auto pub = db_.service_public(ps.service_org, ps.service_url, v, ps.service_arch);
        if (!pub) return internal(pub.err());
        std::string sid = ps.service_org + "/" + service_id(ps.service_url, v, ps.service_arch);
        if (!*pub) return invalid(f, "service '" + sid + "' not found");
        if (!**pub && ps.service_org != p.org)
          return invalid(f, "service '" + sid + "' is not public");
      }
    }
    if (auto r = db_.pattern_put(p, insert); !r) return internal(r.err());
    return add_events(address_pattern_event(db_, fb::EventKind::pattern_changed, p.org, p.name));
  }));
  set_item(std::move(p));
  return {};
}
// Public patterns, those of the caller's org and those the calling agbot serves; others are as
// missing as absent ones.
step handler::get_pattern(const key_parts& k) {
  auto p = db_.load<fb::Pattern>(table::patterns, k.org, k.id);
  if (!p) return missing(k);
  auto ok = auth_.may_read_pattern(*p);
  if (!ok) return internal(ok.err());
  if (!*ok) return missing(k);
  set_item(std::move(*p));
  return {};
}

step handler::remove_pattern(const key_parts& k) {
  HMQ_CHECK(tx([&]() -> step {
    auto exists = db_.blob_get(table::patterns, k.org, k.id);
    if (!exists) return internal(exists.err());
    if (!*exists) return missing(k);
    HMQ_CHECK(add_events(address_pattern_event(db_, fb::EventKind::pattern_removed, k.org, k.id)));
    auto d = db_.row_delete(table::patterns, k.org, k.id);
    if (!d) return internal(d.err());
    return {};
  }));
  return {};
}

}  // namespace hmq::exchange
