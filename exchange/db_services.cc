#include "exchange/db.h"
#include "exchange/db_rows.h"

namespace hmq::exchange {

// Services and patterns (with the pattern_services index).

using db_rows::exists;
using db_rows::span_of;

// ---- services

result<void> db::service_put(const fb::ServiceT& s, std::string_view id, bool insert) {
  auto st = db_.cached(
      insert ? "INSERT INTO services (url, version, arch, public, blob, org, id) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)"
             : "UPDATE services SET url = ?, version = ?, arch = ?, public = ?, blob = ? "
               "WHERE org = ? AND id = ?");
  if (!st) return st.err();
  auto blob = to_blob<fb::Service>(s);
  (*st)->bind(1, s.url).bind(2, s.version).bind(3, s.arch).bind(4, int64_t{s.public_});
  (*st)->bind(5, span_of(blob)).bind(6, s.org).bind(7, id);
  if (auto r = (*st)->exec(); !r) return r.err();
  return {};
}

result<std::optional<bool>> db::service_public(std::string_view org, std::string_view url,
                                               std::string_view version, std::string_view arch) {
  auto st = db_.cached(
      "SELECT MAX(public) FROM services WHERE org = ? AND url = ? AND version = ? AND (? = '*' OR "
      "arch = ?) "
      "HAVING COUNT(*) > 0");
  if (!st) return st.err();
  (*st)->bind_all(org, url, version, arch, arch);
  auto row = (*st)->step();
  if (!row) return row.err();
  if (!*row) return std::optional<bool>{};
  bool pub = (*st)->column_int(0) != 0;
  (*st)->reset();
  return std::optional<bool>(pub);
}

// ---- patterns

result<void> db::pattern_put(const fb::PatternT& p, bool insert) {
  auto st =
      db_.cached(insert ? "INSERT INTO patterns (public, blob, org, id) VALUES (?, ?, ?, ?)"
                        : "UPDATE patterns SET public = ?, blob = ? WHERE org = ? AND id = ?");
  if (!st) return st.err();
  auto blob = to_blob<fb::Pattern>(p);
  (*st)->bind(1, int64_t{p.public_}).bind(2, span_of(blob)).bind(3, p.org).bind(4, p.name);
  if (auto r = (*st)->exec(); !r) return r.err();
  auto del = db_.cached("DELETE FROM pattern_services WHERE org = ? AND id = ?");
  if (!del) return del.err();
  (*del)->bind_all(p.org, p.name);
  if (auto r = (*del)->exec(); !r) return r.err();
  for (const auto& s : p.services) {
    if (!s) continue;
    auto ins = db_.cached(
        "INSERT OR IGNORE INTO pattern_services (org, id, service_org, service_url) VALUES (?, ?, "
        "?, ?)");
    if (!ins) return ins.err();
    (*ins)->bind_all(p.org, p.name, s->service_org, s->service_url);
    if (auto r = (*ins)->exec(); !r) return r.err();
  }
  return {};
}

result<bool> db::pattern_references(std::string_view org, std::string_view name,
                                    std::string_view service_org, std::string_view service_url) {
  auto st = db_.cached(
      "SELECT 1 FROM pattern_services WHERE org = ? AND id = ? AND service_org = ? AND service_url "
      "= ?");
  if (!st) return st.err();
  (*st)->bind_all(org, name, service_org, service_url);
  return exists(*st);
}

}  // namespace hmq::exchange
