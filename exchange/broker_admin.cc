#include "exchange/broker_admin.h"

#include "core/crypto/crypto.h"
#include "core/log/log.h"

namespace hmq::exchange {
namespace {

using json = nlohmann::json;

const std::shared_ptr<spdlog::logger>& logger() {
  static const auto l = core::log::get("broker-admin");
  return l;
}

// An exchange user's broker username is "org/user"; a node's or agbot's is its mailbox id, which
// never holds a '/'.
bool is_user(const std::string& username) {
  return username.find('/') != std::string::npos;
}

std::string own_role(const std::string& username) {
  return (is_user(username) ? "hmq-user-" : "hmq-mb-") + username;
}

const char* shared_role(fb::AuthKind kind) {
  switch (kind) {
    case fb::AuthKind::agbot:
      return "hmq-agbot";
    case fb::AuthKind::user:
      return "hmq-user";
    default:
      return "hmq-node";
  }
}

constexpr const char* recorder_role = "hmq-recorder";

json recorder_command(const broker_change& c) {
  return {{"command", c.recorder ? "addClientRole" : "removeClientRole"},
          {"username", c.username},
          {"rolename", recorder_role}};
}

const char* action_name(broker_change::action a) {
  switch (a) {
    case broker_change::action::ensure:
      return "ensure";
    case broker_change::action::remove:
      return "remove";
    case broker_change::action::set_password:
      return "set password of";
    case broker_change::action::set_recorder:
      return "set recorder role of";
  }
  return "change";
}

// Kept in memory only, to skip re-sending an identity as it is (see apply()).
std::vector<uint8_t> fingerprint(const broker_change& c) {
  std::string in = std::to_string(static_cast<int>(c.kind)) + ":" + c.inbox + ":" +
                   (c.recorder ? "r" : "-") + ":" + c.password;
  auto h = core::crypto::generic_hash({reinterpret_cast<const uint8_t*>(in.data()), in.size()}, 16);
  return {h.begin(), h.end()};
}

json acl(const char* type, std::string topic) {
  return {{"acltype", type}, {"topic", std::move(topic)}, {"allow", true}};
}

// Adds an ACL to an existing role ("ACL with this topic already exists" when it has it).
json add_acl_command(const std::string& role, const char* type, std::string topic) {
  json a = acl(type, std::move(topic));
  a["command"] = "addRoleACL";
  a["rolename"] = role;
  return a;
}

// Clients listed per listClients page: a page stays well under the broker's packet limits.
constexpr uint64_t list_page_size = 500;
constexpr const char* reconcile_tag = "hmq-reconcile";

// A string member of a broker answer, or "" (never throws on another type).
std::string text_of(const json& o, const char* key) {
  if (!o.is_object()) return {};
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Does a listClients entry hold a role only the exchange hands out (hmq-recorder alone is not
// enough: init-dynsec.sh creates it for an admin to grant by hand too)?
bool ours(const json& client) {
  if (!client.is_object() || !client.contains("roles") || !client["roles"].is_array()) return false;
  for (const auto& r : client["roles"])
    if (const auto name = text_of(r, "rolename");
        name == "hmq-node" || name == "hmq-agbot" || name == "hmq-user")
      return true;
  return false;
}

// Answers that mean "already as wanted": the commands are sent without knowing what exists.
// Mosquitto 2.0.11 answers addClientRole of a role the client already holds with "Internal
// error" (checked with mosquitto_ctrl against the real broker); it has no other cause there
// short of running out of memory.
bool benign(const std::string& command, const std::string& error) {
  if (command == "addClientRole" && error == "Internal error") return true;
  return error.find("already exists") != std::string::npos ||
         error.find("not found") != std::string::npos ||
         error.find("already has") != std::string::npos;
}

}  // namespace

json dynsec_commands(const std::vector<broker_change>& changes, const std::string& prefix) {
  json cmds = json::array();
  for (const auto& c : changes) {
    if (c.username.empty()) continue;
    const std::string role = own_role(c.username);
    switch (c.what) {
      case broker_change::action::ensure: {
        const char* shared = shared_role(c.kind);
        json acls = json::array();
        if (c.kind == fb::AuthKind::user) {
          // A user reads only its inbox, which changes with its password: the role's ACL moves
          // (deleting and re-creating a role a client holds broke the 2.0.11 broker's admin
          // connection in our tests; so the role stays).
          const std::string topic = prefix + "/r/" + c.inbox + "/+";
          acls.push_back(acl("subscribePattern", topic));
          cmds.push_back({{"command", "createRole"}, {"rolename", role}, {"acls", acls}});
          if (!c.old_inbox.empty() && c.old_inbox != c.inbox)
            cmds.push_back({{"command", "removeRoleACL"},
                            {"rolename", role},
                            {"acltype", "subscribePattern"},
                            {"topic", prefix + "/r/" + c.old_inbox + "/+"}});
          cmds.push_back(add_acl_command(role, "subscribePattern", topic));
        } else {
          acls = json::array({acl("subscribePattern", prefix + "/mb/" + c.username),
                              acl("subscribePattern", prefix + "/presence/" + c.username),
                              acl("publishClientSend", prefix + "/hb/" + c.username),
                              acl("publishClientSend", prefix + "/presence/" + c.username)});
          // An agbot also reads its uplink, where nodes send to it; a node never reads one, so
          // what a node publishes on another node's uplink reaches nobody.
          const std::string uplink = prefix + "/up/" + c.username;
          if (c.kind == fb::AuthKind::agbot) acls.push_back(acl("subscribePattern", uplink));
          cmds.push_back(
              {{"command", "createRole"}, {"rolename", role}, {"acls", std::move(acls)}});
          // A role made before uplinks existed gets it too ("already exists" otherwise).
          if (c.kind == fb::AuthKind::agbot)
            cmds.push_back(add_acl_command(role, "subscribePattern", uplink));
        }
        cmds.push_back({{"command", "createClient"},
                        {"username", c.username},
                        {"password", c.password},
                        {"roles", json::array({{{"rolename", role}}, {{"rolename", shared}}})}});
        // The client may exist from an earlier registration with another token or role set.
        cmds.push_back(
            {{"command", "setClientPassword"}, {"username", c.username}, {"password", c.password}});
        cmds.push_back(
            {{"command", "addClientRole"}, {"username", c.username}, {"rolename", role}});
        cmds.push_back(
            {{"command", "addClientRole"}, {"username", c.username}, {"rolename", shared}});
        if (c.kind == fb::AuthKind::user) cmds.push_back(recorder_command(c));
        break;
      }
      case broker_change::action::set_recorder:
        cmds.push_back(recorder_command(c));
        break;
      case broker_change::action::remove:
        // deleteClient also disconnects a connected client of that name.
        cmds.push_back({{"command", "deleteClient"}, {"username", c.username}});
        cmds.push_back({{"command", "deleteRole"}, {"rolename", role}});
        break;
      case broker_change::action::set_password:
        cmds.push_back(
            {{"command", "setClientPassword"}, {"username", c.username}, {"password", c.password}});
        break;
    }
  }
  return {{"commands", std::move(cmds)}};
}

broker_admin::broker_admin(core::bus::client& c, std::string topic_prefix)
    : client_(c), prefix_(std::move(topic_prefix)) {}

void broker_admin::start(std::function<void()> ready,
                         std::function<void(const core::error&)> failed) {
  client_.subscribe(
      response_topic, 1, [this](const core::bus::inbound& in) { on_response(in); },
      [ready = std::move(ready), failed = std::move(failed)](core::result<void> r) {
        if (!r) {
          logger()->error(
              "cannot read dynamic-security responses ({}): is the exchange "
              "connected as the broker admin (broker-config/init-dynsec.sh)?",
              r.err().message());
          if (failed) failed(r.err());
          return;
        }
        if (ready) ready();
      });
}

void broker_admin::apply(const std::vector<broker_change>& all, std::function<void()> sent) {
  std::vector<broker_change> changes;
  for (const auto& c : all) {
    if (c.what == broker_change::action::remove) {
      applied_.erase(c.username);
    } else if (c.what == broker_change::action::ensure) {
      auto f = fingerprint(c);
      auto [it, fresh] = applied_.try_emplace(c.username, f);
      if (!fresh && it->second == f) {
        ++unchanged_;
        continue;
      }
      it->second = std::move(f);
    } else {
      applied_.erase(c.username);  // the next ensure is sent again
    }
    changes.push_back(c);
  }
  if (changes.empty()) {
    if (sent) sent();
    return;
  }
  for (const auto& c : changes)
    logger()->info("broker identity {} {}", action_name(c.what), c.username);
  send(dynsec_commands(changes, prefix_), std::move(sent));
}

void broker_admin::send(const json& cmds, std::function<void()> sent) {
  std::string text = cmds.dump();
  ++sent_;
  client_.publish(control_topic, std::vector<uint8_t>(text.begin(), text.end()), {},
                  [this, sent = std::move(sent)](core::result<void> r) {
                    if (!r) {
                      ++failed_;
                      logger()->error("dynamic-security command not delivered: {}",
                                      r.err().message());
                    }
                    if (sent) sent();
                  });
}

void broker_admin::on_response(const core::bus::inbound& in) {
  // The broker is trusted here (it is our own admin channel), but the bytes are still parsed
  // without exceptions and bounded by the broker's max_packet_size.
  json r = json::parse(in.payload.begin(), in.payload.end(), nullptr, false);
  if (!r.is_object() || !r.contains("responses") || !r["responses"].is_array()) return;
  for (const auto& x : r["responses"]) {
    if (text_of(x, "command") == "listClients" && text_of(x, "correlationData") == reconcile_tag) {
      on_list_page(x);
      continue;
    }
    if (!x.is_object() || !x.contains("error") || !x["error"].is_string()) continue;
    std::string err = x["error"].get<std::string>();
    if (benign(text_of(x, "command"), err)) continue;
    ++failed_;
    logger()->warn("dynamic-security {}: {}", text_of(x, "command"), err);
  }
}

void broker_admin::reconcile(registry_fn registered, kept_fn kept) {
  if (listing_) return;
  listing_ = true;
  registered_ = std::move(registered);
  kept_ = std::move(kept);
  listed_.clear();
  rec_ = {};
  auto before = registered_();
  if (!before) return abandon("cannot read the registry's mailboxes: " + before.err().message());
  before_ = std::move(*before);
  logger()->info("reconciling broker identities with the registry ({} mailboxes)", before_.size());
  list_page(0);
}

void broker_admin::list_page(uint64_t offset) {
  offset_ = offset;
  send({{"commands", json::array({{{"command", "listClients"},
                                   {"verbose", true},
                                   {"count", list_page_size},
                                   {"offset", offset},
                                   {"correlationData", reconcile_tag}}})}});
}

void broker_admin::on_list_page(const json& x) {
  if (!listing_) return;
  if (x.contains("error")) {
    ++failed_;
    return abandon("cannot list the broker's clients: " + x["error"].dump());
  }
  const auto d = x.find("data");
  if (d == x.end() || !d->is_object() || !d->contains("clients") || !(*d)["clients"].is_array())
    return abandon("listClients answered without a client list");
  const json& clients = (*d)["clients"];
  for (const auto& c : clients)
    if (auto user = text_of(c, "username"); ours(c) && !user.empty())
      listed_.insert(std::move(user));
  const auto t = d->find("totalCount");
  const uint64_t total = t != d->end() && t->is_number_unsigned() ? t->get<uint64_t>() : 0;
  const uint64_t next = offset_ + clients.size();
  if (!clients.empty() && next < total) return list_page(next);
  finish_reconcile();
}

void broker_admin::abandon(const std::string& why) {
  listing_ = false;
  listed_.clear();
  before_.clear();
  logger()->error("{}: broker identities not reconciled", why);
}

void broker_admin::finish_reconcile() {
  listing_ = false;
  auto reg = registered_();
  if (!reg) return abandon("cannot read the registry's mailboxes: " + reg.err().message());
  rec_.listed = listed_.size();
  std::vector<broker_change> orphans;
  for (const auto& user : listed_)
    if (!reg->count(user)) {
      logger()->warn(
          "broker identity {} belongs to no node, agbot or user of the registry (a removal the "
          "exchange committed but did not apply): removing it",
          user);
      broker_change c;
      c.what = broker_change::action::remove;
      c.username = user;
      orphans.push_back(std::move(c));
    }
  rec_.removed = orphans.size();
  std::set<std::string> missing;
  for (const auto& mb : before_)
    if (reg->count(mb) && !listed_.count(mb)) missing.insert(mb);
  // Created again from the kept secrets; an identity committed but never sent (a crash) too.
  std::vector<broker_change> again;
  if (!missing.empty() && kept_) {
    auto k = kept_(missing);
    if (!k)
      logger()->error("cannot read the kept broker secrets: {}", k.err().message());
    else
      again = std::move(*k);
  }
  for (const auto& c : again) {
    logger()->warn("broker identity {} is registered but not on the broker: creating it again",
                   c.username);
    missing.erase(c.username);
  }
  rec_.recreated = again.size();
  rec_.missing = missing.size();
  if (!missing.empty())
    logger()->warn(
        "{} registered identities have no broker client and no kept secret (first: {}), so "
        "they cannot connect until an admin provisions them again: a node or agbot by changing "
        "its token or by removing it and creating it with its mailbox (hmq exchange node|agbot "
        "create ID:TOKEN --mailbox MAILBOX), a user by setting its password",
        missing.size(), *missing.begin());
  std::vector<broker_change> fixes = std::move(orphans);
  fixes.insert(fixes.end(), std::make_move_iterator(again.begin()),
               std::make_move_iterator(again.end()));
  if (!fixes.empty()) apply(fixes);
  logger()->info(
      "broker identities reconciled: {} on the broker, {} removed, {} created again, {} missing",
      rec_.listed, rec_.removed, rec_.recreated, rec_.missing);
  listed_.clear();
  before_.clear();
}

}  // namespace hmq::exchange
