// Rollout progress of a pattern: published by the agbots that serve it, read by whoever may read
// the pattern.
#include "exchange/handler.h"
#include "exchange/validate.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

using exchange_client::split_qualified;

// Only an agbot that serves the pattern publishes its progress, under its own name.
step handler::put_rollout_status(const fb::PutRolloutStatus& op) {
  if (!op.status()) return invalid("status", "required");
  fb::RolloutStatusT s;
  op.status()->UnPackTo(&s);
  HMQ_CHECK(check_qualified("status.pattern", s.pattern));
  HMQ_CHECK(check_id("status.service_org", s.service_org));
  HMQ_CHECK(check_url("status.service_url", s.service_url));
  if (s.state == fb::RolloutState::unspecified || s.state > fb::RolloutState::halted)
    return invalid("status.state", "must be one of running, paused, complete, halted");
  if (s.versions.size() > 64) return invalid("status.versions", "at most 64 versions");
  for (const auto& v : s.versions) {
    if (!v) return invalid("status.versions", "empty entry");
    HMQ_CHECK(check_version("status.versions.version", v->version));
  }
  if (!s.target_version.empty())
    HMQ_CHECK(check_version("status.target_version", s.target_version));
  if (p_.kind != fb::AuthKind::agbot)
    return auth_.denied_on("publish rollouts of", "pattern", s.pattern);
  auto q = split_qualified(s.pattern);
  if (!q) return invalid("status.pattern", "must be org/name");
  auto serves = db_.agbot_serves(p_.org, p_.id, q->org, q->name, "");
  if (!serves) return internal(serves.err());
  if (!*serves) return auth_.denied_on("publish rollouts of", "pattern", s.pattern);
  s.agbot = p_.org + "/" + p_.id;
  s.updated_ms = s_.clock_.now_ms();
  HMQ_CHECK(tx([&]() -> step {
    if (auto e = db_.rollout_put(s); !e) return internal(e.err());
    return {};
  }));
  set_empty();
  return {};
}

// Whoever may read the pattern may read its rollouts.
step handler::get_rollout_status(const fb::GetRolloutStatus& op) {
  std::string org = str(op.pattern_org()), name = str(op.pattern());
  HMQ_CHECK(check_id("pattern_org", org));
  HMQ_CHECK(check_id("pattern", name));
  auto p = db_.load<fb::Pattern>(table::patterns, org, name);
  if (!p) return not_found("pattern", org + "/" + name);
  auto ok = auth_.may_read_pattern(*p);
  if (!ok) return internal(ok.err());
  if (!*ok) return not_found("pattern", org + "/" + name);
  auto rows = db_.rollout_list(org + "/" + name);
  if (!rows) return internal(rows.err());
  fb::RolloutStatusListT l;
  for (auto& r : *rows) l.statuses.push_back(std::make_unique<fb::RolloutStatusT>(std::move(r)));
  set_result(std::move(l));
  return {};
}
}  // namespace hmq::exchange
