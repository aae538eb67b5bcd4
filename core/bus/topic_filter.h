#pragma once

#include <string_view>

// MQTT topic-filter matching, used by the client to route each inbound message to the handlers
// of the subscriptions it matches (Paho delivers everything through one callback).
namespace hmq::core::bus {

// The filter without a "$share/<group>/" prefix: a shared subscription delivers messages whose
// topic matches the rest of the filter.
std::string_view strip_shared_prefix(std::string_view filter);

// MQTT 5 section 4.7 matching: '+' matches exactly one level (possibly empty), '#' (last level
// only) matches the parent level and any number of levels below it. Filters starting with a
// wildcard do not match topics starting with '$' ($SYS, ...). A "$share/<group>/" prefix on
// the filter is ignored. Malformed filters ("a/b#", "#/a", "a+") match nothing.
bool topic_matches(std::string_view filter, std::string_view topic);

}  // namespace hmq::core::bus
