// The resource traits table: for every kind of resource, who may do each generic operation and
// which handler member does it. handler.cc dispatches through it; nothing else switches on the
// kind of a resource.
#include "exchange/handler.h"

namespace hmq::exchange {

namespace {

using h = handler;
using k = fb::ResourceKind;
using u = fb::Resource;

// Who, and the verb a refusal names.
constexpr rule root_creates{access::root, "create"};
constexpr rule root_deletes{access::root, "delete"};
constexpr rule admin{access::org_admin, "modify"};
constexpr rule writer{access::org_writer, "modify"};
constexpr rule writer_lists{access::org_writer, "list"};
constexpr rule member_lists{access::org_member, "list"};
constexpr rule member_reads{access::org_member, "read"};
constexpr rule self_modifies{access::admin_or_self, "modify"};  // a user's own password
constexpr rule self_renames{access::writer_or_self, "modify"};  // a node's own name
constexpr rule self_reads{access::writer_or_self, "read"};
constexpr rule by_record{access::by_record, {}};  // the resource's file decides from the record

// Row: kind, union member, name, table; who may create, update, read, remove, list; whether
// others list its public records; the members that put, get, remove, list a page, present a row.
const resource_traits traits[] = {
    {k::org, u::Org, "org", table::users /* unused */, root_creates, admin, member_reads,
     root_deletes, by_record, false, &h::put_org, &h::get_org, &h::remove_org, &h::list_orgs,
     nullptr},
    {k::user, u::User, "user", table::users, admin, self_modifies, self_reads, admin, writer_lists,
     false, &h::put_user, &h::get_user, &h::remove_user, &h::list_rows, &h::present_blob<fb::User>},
    {k::node, u::Node, "node", table::nodes, writer, self_renames, by_record, writer, writer_lists,
     false, &h::put_node, &h::get_node, &h::remove_node, &h::list_rows, &h::present_blob<fb::Node>},
    {k::agbot, u::Agbot, "agbot", table::agbots, admin, admin, self_reads, admin, writer_lists,
     false, &h::put_agbot, &h::get_agbot, &h::remove_agbot, &h::list_rows, &h::present_agbot},
    {k::service, u::Service, "service", table::services, writer, writer, by_record, writer,
     member_lists, true, &h::put_service, &h::get_service, &h::remove_service, &h::list_rows,
     &h::present_service_row},
    {k::pattern, u::Pattern, "pattern", table::patterns, writer, writer, by_record, writer,
     member_lists, true, &h::put_pattern, &h::get_pattern, &h::remove_pattern, &h::list_rows,
     &h::present_blob<fb::Pattern>},
};

}  // namespace

const resource_traits* traits_of(fb::ResourceKind k) {
  for (const auto& t : traits)
    if (t.kind == k) return &t;
  return nullptr;
}

const resource_traits* traits_of(fb::Resource r) {
  for (const auto& t : traits)
    if (t.type == r) return &t;
  return nullptr;
}

}  // namespace hmq::exchange
