#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agbot/seams.h"

// Building blocks of a Proposal that need no state: which pattern service version to propose,
// its dependency tree through versionRange, and the user input values.
namespace hmq::agbot {

// The version of a pattern service to propose: the lowest priority_value among
// service_versions (an entry without a priority ranks last); ties go to the first listed.
// Empty when the pattern lists no version.
std::string preferred_version(const fb::PatternServiceT& ps);

// Does a pattern service apply to a node of `arch`? Equal, or the pattern says "*" / nothing.
bool arch_matches(const std::string& service_arch, const std::string& node_arch);

// Values for the declared user inputs of `s`: service defaults < pattern userInput < node
// userInput. An entry applies when its org (if given), url, arch (if given, "*" = any) and
// version range (if given) match the service. Undeclared names are dropped.
std::vector<fb::UserInputValueT> resolve_user_inputs(const fb::ServiceT& s, const fb::PatternT& p,
                                                     const fb::NodeT& n);

// Limits the size of a dependency tree so a hostile or broken exchange cannot make us fetch
// forever.
constexpr size_t max_services_per_proposal = 32;

// Fetches a top-level service and, depth first, every service it requires, each resolved to the
// highest version published for the arch inside its versionRange. The result lists the
// top-level service first; a service required twice appears once (the first resolution wins).
void resolve_services(exchange_api& x, std::string org, std::string url, std::string version,
                      std::string arch, callback<std::vector<fb::ServiceT>> cb);

}  // namespace hmq::agbot
