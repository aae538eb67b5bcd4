#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "schema/message_generated.h"

// How `hmq exchange ...` shows the exchange's resources: a table row per resource for `list`,
// fields for `get`, and the JSON of `-o json` (Horizon's field names where hzn has them).
namespace hmq::cli {

namespace fb = ::hmq::wire::fb;

// A table with a header row (columns as in cli/format.h).
void print_table(std::ostream& out, const std::vector<std::string>& head,
                 const std::vector<std::vector<std::string>>& rows);

// `-o json` of one resource (org, user, node, agbot, service, pattern); null for another.
nlohmann::json resource_json(const fb::ResourceUnion& r);
// `get` for people: its fields, and for services and patterns a table of what they hold.
void print_resource_detail(std::ostream& out, const fb::ResourceUnion& r);
// `list` for people: the row of one resource under the columns head_of(its kind).
std::vector<std::string> row_of(const fb::ResourceUnion& r);
std::vector<std::string> head_of(fb::ResourceKind k);

// `-o json` of one of the exchange's agreement records.
nlohmann::json agreement_record_json(const fb::AgreementRecordT& r);

}  // namespace hmq::cli
