#include "agbot/resolver.h"

#include <climits>
#include <deque>
#include <map>
#include <set>

#include "agbot/errc.h"
#include "agbot/version_range.h"

namespace hmq::agbot {
namespace {

bool input_applies(const fb::ServiceUserInputT& ui, const fb::ServiceT& s) {
  if (ui.service_url != s.url) return false;
  if (!ui.service_org.empty() && ui.service_org != s.org) return false;
  if (!arch_matches(ui.service_arch, s.arch)) return false;
  if (!ui.service_version_range.empty()) {
    auto r = parse_version_range(ui.service_version_range);
    auto v = parse_version(s.version);
    if (!r || !v || !r->contains(*v)) return false;
  }
  return true;
}

// One resolution in progress: a queue of services still to fetch, walked one at a time so the
// outcome does not depend on the order responses arrive in.
struct resolve_job : std::enable_shared_from_this<resolve_job> {
  struct pending {
    std::string org, url, arch;
    std::string version;        // exact (top level) or empty
    std::string version_range;  // for dependencies
  };
  exchange_api& x;
  callback<std::vector<fb::ServiceT>> cb;
  std::deque<pending> todo;
  std::set<std::string> seen;  // org/url/arch
  std::vector<fb::ServiceT> out;

  resolve_job(exchange_api& xa, callback<std::vector<fb::ServiceT>> c) : x(xa), cb(std::move(c)) {}

  void fail(core::error e) {
    auto c = std::move(cb);
    c(std::move(e));
  }

  void next() {
    while (!todo.empty() &&
           seen.count(todo.front().org + "/" + todo.front().url + "/" + todo.front().arch))
      todo.pop_front();
    if (todo.empty()) {
      auto c = std::move(cb);
      c(std::move(out));
      return;
    }
    if (out.size() >= max_services_per_proposal)
      return fail({make_error_code(errc::too_many_dependencies), todo.front().url});
    pending p = std::move(todo.front());
    todo.pop_front();
    seen.insert(p.org + "/" + p.url + "/" + p.arch);
    if (!p.version.empty()) return fetch(std::move(p));
    auto range = parse_version_range(p.version_range);
    if (!range) return fail({range.err().code, p.url + " " + range.err().detail});
    x.list_service_versions(
        p.org, p.url, p.arch, [self = shared_from_this(), p, r = *range](auto versions) mutable {
          if (!versions) return self->fail(versions.err());
          auto best = pick_highest(r, *versions);
          if (!best)
            return self->fail({best.err().code, p.url + " " + p.version_range + " for " + p.arch});
          p.version = *best;
          self->fetch(std::move(p));
        });
  }

  void fetch(pending p) {
    x.get_service(p.org, p.url, p.version, p.arch, [self = shared_from_this(), p](auto s) {
      if (!s) return self->fail({s.err().code, p.url + " " + p.version + " " + p.arch});
      for (const auto& ref : s->required_services) {
        if (!ref) continue;
        // A dependency without an arch runs on the same arch as its consumer.
        std::string arch = ref->arch.empty() || ref->arch == "*" ? p.arch : ref->arch;
        self->todo.push_back(
            {ref->org.empty() ? p.org : ref->org, ref->url, arch, {}, ref->version_range});
      }
      self->out.push_back(std::move(*s));
      self->next();
    });
  }
};

}  // namespace

std::string preferred_version(const fb::PatternServiceT& ps) {
  const fb::ServiceVersionT* best = nullptr;
  int best_prio = INT_MAX;
  for (const auto& v : ps.service_versions) {
    if (!v || v->version.empty()) continue;
    int prio = v->priority ? v->priority->priority_value : INT_MAX;
    if (!best || prio < best_prio) {
      best = v.get();
      best_prio = prio;
    }
  }
  return best ? best->version : std::string{};
}

bool arch_matches(const std::string& service_arch, const std::string& node_arch) {
  return service_arch.empty() || service_arch == "*" || service_arch == node_arch;
}

std::vector<fb::UserInputValueT> resolve_user_inputs(const fb::ServiceT& s, const fb::PatternT& p,
                                                     const fb::NodeT& n) {
  std::map<std::string, std::string> values;
  std::set<std::string> declared;
  for (const auto& def : s.user_inputs) {
    if (!def) continue;
    declared.insert(def->name);
    if (def->has_default) values[def->name] = def->default_value;
  }
  auto apply = [&](const std::vector<std::unique_ptr<fb::ServiceUserInputT>>& list) {
    for (const auto& ui : list) {
      if (!ui || !input_applies(*ui, s)) continue;
      for (const auto& v : ui->inputs)
        if (v && declared.count(v->name)) values[v->name] = v->value;
    }
  };
  apply(p.user_inputs);
  apply(n.user_inputs);
  std::vector<fb::UserInputValueT> out;
  out.reserve(values.size());
  for (auto& [name, value] : values) {
    fb::UserInputValueT v;
    v.name = name;
    v.value = std::move(value);
    out.push_back(std::move(v));
  }
  return out;
}

void resolve_services(exchange_api& x, std::string org, std::string url, std::string version,
                      std::string arch, callback<std::vector<fb::ServiceT>> cb) {
  auto job = std::make_shared<resolve_job>(x, std::move(cb));
  job->todo.push_back({std::move(org), std::move(url), std::move(arch), std::move(version), {}});
  job->next();
}

}  // namespace hmq::agbot
