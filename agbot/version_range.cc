#include "agbot/version_range.h"

#include <charconv>

#include "agbot/errc.h"

namespace hmq::agbot {
namespace {

constexpr std::string_view infinity = "INFINITY";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

core::error fail(errc e, std::string_view s) { return {make_error_code(e), "'" + std::string(s) + "'"}; }

}  // namespace

std::string version::str() const {
  return std::to_string(parts[0]) + "." + std::to_string(parts[1]) + "." + std::to_string(parts[2]);
}

core::result<version> parse_version(std::string_view s) {
  const std::string_view orig = s;
  s = trim(s);
  version v;
  size_t n = 0;
  while (true) {
    if (n == v.parts.size()) return fail(errc::bad_version, orig);
    auto dot = s.find('.');
    std::string_view part = s.substr(0, dot);
    // Digits only: from_chars would accept a leading '-' for signed types and stops silently.
    if (part.empty() || part.size() > 9) return fail(errc::bad_version, orig);
    for (char c : part)
      if (c < '0' || c > '9') return fail(errc::bad_version, orig);
    uint32_t value = 0;
    std::from_chars(part.data(), part.data() + part.size(), value);
    v.parts[n++] = value;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return v;
}

bool version_range::contains(const version& v) const {
  if (low_inclusive ? v < low : v <= low) return false;
  if (high && (high_inclusive ? v > *high : v >= *high)) return false;
  return true;
}

core::result<version_range> parse_version_range(std::string_view s) {
  const std::string_view orig = s;
  s = trim(s);
  version_range r;
  if (s.empty()) return r;  // any version
  const char open = s.front();
  if (open != '[' && open != '(') {
    auto v = parse_version(s);
    if (!v) return fail(errc::bad_version_range, orig);
    r.low = *v;
    return r;
  }
  const char close = s.back();
  if (s.size() < 2 || (close != ']' && close != ')')) return fail(errc::bad_version_range, orig);
  std::string_view inner = s.substr(1, s.size() - 2);
  auto comma = inner.find(',');
  if (comma == std::string_view::npos) return fail(errc::bad_version_range, orig);
  auto lo = parse_version(inner.substr(0, comma));
  if (!lo) return fail(errc::bad_version_range, orig);
  r.low = *lo;
  r.low_inclusive = open == '[';
  std::string_view hi = trim(inner.substr(comma + 1));
  r.high_inclusive = close == ']';
  if (hi != infinity) {
    auto h = parse_version(hi);
    if (!h) return fail(errc::bad_version_range, orig);
    r.high = *h;
    if (*r.high < r.low) return fail(errc::bad_version_range, orig);
  }
  return r;
}

core::result<std::string> pick_highest(const version_range& range,
                                       std::span<const std::string> candidates) {
  const std::string* best = nullptr;
  version best_v{};
  for (const auto& c : candidates) {
    auto v = parse_version(c);
    if (!v || !range.contains(*v)) continue;
    if (!best || *v > best_v) {
      best = &c;
      best_v = *v;
    }
  }
  if (!best) return core::error{make_error_code(errc::no_matching_version), {}};
  return *best;
}

}  // namespace hmq::agbot
