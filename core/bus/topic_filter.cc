#include "core/bus/topic_filter.h"

#include <vector>

namespace hmq::core::bus {

namespace {

constexpr std::string_view shared_prefix = "$share/";

// Topic levels; "a//b" has an empty middle level, as MQTT says.
std::vector<std::string_view> split_levels(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  for (;;) {
    size_t slash = s.find('/', pos);
    if (slash == std::string_view::npos) {
      out.push_back(s.substr(pos));
      return out;
    }
    out.push_back(s.substr(pos, slash - pos));
    pos = slash + 1;
  }
}

}  // namespace

std::string_view strip_shared_prefix(std::string_view filter) {
  if (filter.substr(0, shared_prefix.size()) != shared_prefix) return filter;
  size_t group_end = filter.find('/', shared_prefix.size());
  if (group_end == std::string_view::npos) return {};  // "$share/group" alone is no filter
  return filter.substr(group_end + 1);
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  filter = strip_shared_prefix(filter);
  if (filter.empty() || topic.empty()) return false;
  if (topic.front() == '$' && (filter.front() == '+' || filter.front() == '#')) return false;

  const auto f = split_levels(filter);
  const auto t = split_levels(topic);
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return i + 1 == f.size();  // also matches the parent: "a/#" matches "a"
    if (f[i] != "+" && f[i].find_first_of("+#") != std::string_view::npos) return false;
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

}  // namespace hmq::core::bus
