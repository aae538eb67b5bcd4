// A proposal against the pattern the node registered for, as the exchange holds it (issue 16):
// Open Horizon's agent accepts only a workload its pattern lists. Without this check a serving
// agbot could propose any validly signed version of a pattern's service, an old one with a known
// flaw included. The pattern is read over the sealed RPC (the exchange's key answers), cached,
// and read again whenever a proposal names a version the cached copy does not list (a rollout
// added it), and in any case once the copy is older than engine_options::pattern_ttl (a version
// removed from the pattern stops passing).
#include "agent/engine.h"
#include "agent/engine_internal.h"
#include "exchange_client/ids.h"

namespace hmq::agent {
using namespace engine_internal;  // the engine files' shared helpers
namespace {

struct proposed_service {
  std::string org, url, arch, version;
  std::string name() const { return org + "/" + url + "@" + version + " (" + arch + ")"; }
};

bool arch_matches(const std::string& pattern_arch, const std::string& arch) {
  return pattern_arch.empty() || pattern_arch == "*" || pattern_arch == arch;
}

bool lists(const fb::PatternT& pat, const proposed_service& s) {
  for (const auto& ps : pat.services) {
    if (!ps || ps->service_org != s.org || ps->service_url != s.url ||
        !arch_matches(ps->service_arch, s.arch))
      continue;
    for (const auto& v : ps->service_versions)
      if (v && v->version == s.version) return true;
  }
  return false;
}

// "versions 1.0.0, 1.1.0" of the service in the pattern, for the rejection message.
std::string listed_versions(const fb::PatternT& pat, const proposed_service& s) {
  std::string out;
  for (const auto& ps : pat.services) {
    if (!ps || ps->service_org != s.org || ps->service_url != s.url) continue;
    for (const auto& v : ps->service_versions)
      if (v) out += (out.empty() ? "" : ", ") + v->version;
  }
  return out.empty() ? "does not list the service" : "lists versions " + out;
}

}  // namespace

void engine::check_pattern(const fb::Proposal& p, const stored_registration& reg,
                           std::function<void(std::optional<reject_reason>)> done) {
  const fb::Service* top = top_level(p);
  if (!top) return done(std::nullopt);  // evaluate() refuses it
  proposed_service s{str(top->org()), str(top->url()), str(top->arch()), str(top->version())};
  const std::string key = reg.pattern;
  auto verdict = [key, s](const fb::PatternT& pat) -> std::optional<reject_reason> {
    if (lists(pat, s)) return std::nullopt;
    return reject_reason{
        reason_code(fb::CancelReason::policy_changed),
        "service " + s.name() + " is not in pattern " + key + ", which " + listed_versions(pat, s)};
  };
  const int64_t now = loop_.time().now_ms();
  // A listed version passes on the cached copy while it is fresh; an unlisted one always asks
  // the exchange (a rollout may have added it a moment ago). Only an agbot whose key the
  // exchange confirmed gets here, at most --mailbox-rate proposals a second.
  if (pattern_ && pattern_key_ == key && lists(*pattern_, s) &&
      now - pattern_read_ms_ < opts_.pattern_ttl.count())
    return done(verdict(*pattern_));
  auto q = exchange_client::split_qualified(key);
  if (!q)
    return done(reject_reason{reason_code(fb::CancelReason::node_pattern_changed),
                              "registered pattern " + key + " is not org/name"});
  ++stats_.pattern_reads;
  x_.get_pattern(
      reg.node, q->org, q->name,
      [this, key, verdict, done = std::move(done), alive = alive_](result<fb::PatternT> r) {
        if (!*alive) return;
        if (!r)
          return done(reject_reason{
              reason_code(fb::CancelReason::policy_changed),
              "cannot read pattern " + key + " to check the proposal: " + r.err().message()});
        pattern_ = std::move(*r);
        pattern_key_ = key;
        pattern_read_ms_ = loop_.time().now_ms();
        done(verdict(*pattern_));
      });
}

}  // namespace hmq::agent
