// Services: create, update, get, delete; registry tokens sealed at rest.
#include "core/crypto/crypto.h"
#include "exchange/handler.h"
#include "exchange/validate.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

namespace crypto = core::crypto;
using exchange_client::service_id;

step handler::put_service(const void* in, bool insert) {
  auto s = unpack<fb::Service>(in);
  HMQ_CHECK(check_service(s));
  std::string id = service_id(s.url, s.version, s.arch);
  HMQ_CHECK(check_text("url", id, max_url));
  std::string key = s.org + "/" + id;
  HMQ_CHECK(may_put(fb::ResourceKind::service, insert, s.org, id));
  for (auto& d : s.dockauths) d->token = s_.seal_secret(d->token);
  HMQ_CHECK(tx([&]() -> step {
    HMQ_CHECK(need_org(s.org));
    auto cur = db_.blob_get(table::services, s.org, id);
    if (!cur) return internal(cur.err());
    HMQ_CHECK(expect_existing(insert, bool(*cur), "service", key));
    if (auto r = db_.service_put(s, id, insert); !r) return internal(r.err());
    return add_events(address_service_event(db_, fb::EventKind::service_changed, s.org, s.url, id));
  }));
  auto shown = present_service(std::move(s));
  if (!shown) return internal(shown.err());
  set_item(std::move(*shown));
  return {};
}

// Private services of other orgs are not revealed: they are as missing as absent ones.
step handler::get_service(const key_parts& k) {
  auto s = db_.load<fb::Service>(table::services, k.org, k.id);
  if (!s) return missing(k);
  auto ok = auth_.may_read_service(*s);
  if (!ok) return internal(ok.err());
  if (!*ok) return missing(k);
  auto shown = present_service(std::move(*s));
  if (!shown) return internal(shown.err());
  set_item(std::move(*shown));
  return {};
}

step handler::present_service_row(blob_row& r, fb::ResourceItemT& item) {
  auto s = from_blob<fb::Service>(r.blob);
  if (!s) return {};
  auto shown = present_service(std::move(*s));
  if (!shown) return internal(shown.err());
  item.resource.Set(std::move(*shown));
  return {};
}

step handler::remove_service(const key_parts& k) {
  HMQ_CHECK(tx([&]() -> step {
    auto s = db_.load<fb::Service>(table::services, k.org, k.id);
    if (!s) return missing(k);
    HMQ_CHECK(add_events(
        address_service_event(db_, fb::EventKind::service_removed, s->org, s->url, k.id)));
    auto d = db_.row_delete(table::services, k.org, k.id);
    if (!d) return internal(d.err());
    return {};
  }));
  return {};
}

// Service as returned to the caller: registry tokens opened or removed.
result<fb::ServiceT> handler::present_service(fb::ServiceT s) {
  auto see = auth_.may_see_dockauth_tokens(s);
  if (!see) return see.err();
  for (auto& d : s.dockauths)
    if (d) d->token = *see ? s_.open_secret(d->token) : std::string();
  return s;
}
}  // namespace hmq::exchange
