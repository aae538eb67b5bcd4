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

std::string own_role(const std::string& user) {
  return "hmq-mb-" + user;
}

std::vector<uint8_t> fingerprint(fb::AuthKind kind, const std::string& password) {
  std::string in = std::to_string(static_cast<int>(kind)) + ":" + password;
  auto h = core::crypto::generic_hash({reinterpret_cast<const uint8_t*>(in.data()), in.size()}, 16);
  return {h.begin(), h.end()};
}

json acl(const char* type, std::string topic) {
  return {{"acltype", type}, {"topic", std::move(topic)}, {"allow", true}};
}

// Answers that mean "already as wanted": the commands are sent without knowing what exists.
bool benign(const std::string& error) {
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
        const char* shared = c.kind == fb::AuthKind::agbot ? "hmq-agbot" : "hmq-node";
        cmds.push_back(
            {{"command", "createRole"},
             {"rolename", role},
             {"acls",
              json::array({acl("subscribePattern", prefix + "/mb/" + c.username),
                           acl("subscribePattern", prefix + "/presence/" + c.username),
                           acl("publishClientSend", prefix + "/hb/" + c.username),
                           acl("publishClientSend", prefix + "/presence/" + c.username)})}});
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
        break;
      }
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

void broker_admin::start() {
  client_.subscribe(
      response_topic, 1, [this](const core::bus::inbound& in) { on_response(in); },
      [](core::result<void> r) {
        if (!r)
          logger()->error(
              "cannot read dynamic-security responses ({}): is the exchange "
              "connected as the broker admin (broker-config/init-dynsec.sh)?",
              r.err().message());
      });
}

void broker_admin::apply(const std::vector<broker_change>& all) {
  std::vector<broker_change> changes;
  for (const auto& c : all) {
    if (c.what == broker_change::action::remove) {
      applied_.erase(c.username);
    } else if (c.what == broker_change::action::ensure) {
      auto f = fingerprint(c.kind, c.password);
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
  if (changes.empty()) return;
  json cmds = dynsec_commands(changes, prefix_);
  std::string text = cmds.dump();
  ++sent_;
  for (const auto& c : changes)
    logger()->info("broker identity {} {}",
                   c.what == broker_change::action::remove ? "remove" : "ensure", c.username);
  client_.publish(control_topic, std::vector<uint8_t>(text.begin(), text.end()), {},
                  [this](core::result<void> r) {
                    if (r) return;
                    ++failed_;
                    logger()->error("dynamic-security command not delivered: {}",
                                    r.err().message());
                  });
}

void broker_admin::on_response(const core::bus::inbound& in) {
  // The broker is trusted here (it is our own admin channel), but the bytes are still parsed
  // without exceptions and bounded by the broker's max_packet_size.
  json r = json::parse(in.payload.begin(), in.payload.end(), nullptr, false);
  if (!r.is_object() || !r.contains("responses") || !r["responses"].is_array()) return;
  for (const auto& x : r["responses"]) {
    if (!x.is_object() || !x.contains("error") || !x["error"].is_string()) continue;
    std::string err = x["error"].get<std::string>();
    if (benign(err)) continue;
    ++failed_;
    logger()->warn("dynamic-security {}: {}", x.value("command", std::string("?")), err);
  }
}

}  // namespace hmq::exchange
