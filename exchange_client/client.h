#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "core/bus/messenger.h"
#include "core/bus/topics.h"
#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"
#include "schema/message_generated.h"

// Client side of the exchange RPC API (schema/exchange.fbs), used by the hmq CLI, agbots and
// agents. Requests are sealed to the pinned exchange key and published on the RPC topic;
// responses arrive in the caller's mailbox through the messenger.
namespace hmq::exchange_client {

namespace fb = ::hmq::wire::fb;
using core::result;

// Mirrors fb::RpcStatus (same numbers) so a refusal keeps its meaning, plus the failures that
// happen before the exchange answers. `is_refusal()` tells the two groups apart.
enum class client_errc {
  ok = 0,
  not_found = 2,
  already_exists = 3,
  unauthorized = 4,
  forbidden = 5,
  invalid_argument = 6,
  internal = 7,
  rate_limited = 8,
  conflict = 9,
  unavailable = 10,
  timeout = 20,  // no answer in time: broker or exchange unreachable
  stopped = 21,  // messenger stopped with the request in flight
  bad_response =
      22,  // answer is not an RpcResponse, has status unspecified or an unexpected result
};
const std::error_category& client_category();
std::error_code make_error_code(client_errc e);
// True for codes the exchange itself answered with (not_found .. unavailable).
bool is_refusal(std::error_code ec);
client_errc from_status(fb::RpcStatus s);

// Who is asking. The secret travels only inside the sealed request.
struct credentials {
  fb::AuthKind kind = fb::AuthKind::unspecified;
  std::string org;
  std::string id;
  std::string secret;

  static credentials user(std::string org, std::string name, std::string password) {
    return {fb::AuthKind::user, std::move(org), std::move(name), std::move(password)};
  }
  static credentials node(std::string org, std::string id, std::string token) {
    return {fb::AuthKind::node, std::move(org), std::move(id), std::move(token)};
  }
  static credentials agbot(std::string org, std::string id, std::string token) {
    return {fb::AuthKind::agbot, std::move(org), std::move(id), std::move(token)};
  }
};

// A verified RpcResponse (the Message it came in was verified by the codec, nested tables
// included). Cheap to move; the accessors point into the owned bytes.
class rpc_reply {
 public:
  explicit rpc_reply(core::wire::opened m) : msg_(std::move(m)) {}
  const fb::RpcResponse* response() const { return msg_.message()->body_as_RpcResponse(); }
  fb::RpcStatus status() const { return response()->status(); }
  std::string_view message() const { return view(response()->error_message()); }
  std::string_view field() const { return view(response()->error_field()); }
  fb::RpcResult result_type() const { return response()->result_type(); }
  template <typename T>
  const T* result_as() const {
    return response()->result_as<T>();
  }
  const core::wire::opened& raw() const { return msg_; }

 private:
  static std::string_view view(const flatbuffers::String* s) {
    return s ? s->string_view() : std::string_view();
  }
  core::wire::opened msg_;
};

// Builds the op of a request into the builder: returns its union tag and offset.
using op_builder =
    std::function<std::pair<fb::RpcOp, flatbuffers::Offset<void>>(flatbuffers::FlatBufferBuilder&)>;

struct resource_page {
  std::vector<fb::ResourceUnion> items;
  std::string next_page_token;
};
struct node_page {
  std::vector<fb::NodeT> nodes;
  std::string next_page_token;
};
struct key_info {
  core::crypto::public_key public_key{};
  std::string mailbox;
};

// Lifecycle: construct after the messenger; the messenger must be started (subscribed to its
// mailbox) before the first call and outlive this object. Loop thread only; every callback is
// called exactly once, on the loop thread.
class client {
 public:
  template <typename T>
  using callback = std::function<void(result<T>)>;
  using done = std::function<void(result<void>)>;

  client(core::loop::scheduler& loop, core::bus::messenger& m,
         core::crypto::public_key exchange_key, core::bus::topics t = {});

  // Default timeout of the typed helpers.
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // One RPC. A reply with status ok gives an rpc_reply; any other status becomes an error with
  // the matching client_errc and the exchange's message (and field, if any) as detail.
  void call(const credentials& auth, const op_builder& op, std::chrono::milliseconds timeout,
            callback<rpc_reply> cb);
  // Same with an object-API op.
  void call(const credentials& auth, const fb::RpcOpUnion& op, std::chrono::milliseconds timeout,
            callback<rpc_reply> cb);

  // Resources (org, user, node, agbot, service, pattern).
  void create_resource(const credentials& auth, const fb::ResourceUnion& r, done cb);
  void update_resource(const credentials& auth, const fb::ResourceUnion& r, done cb);
  void get_resource(const credentials& auth, fb::ResourceKind kind, std::string org, std::string id,
                    callback<fb::ResourceUnion> cb);
  void delete_resource(const credentials& auth, fb::ResourceKind kind, std::string org,
                       std::string id, done cb);
  void list_resources(const credentials& auth, fb::ResourceKind kind, std::string org,
                      std::string page_token, uint32_t limit, callback<resource_page> cb);
  // Follows next_page_token until the end (at most max_items items).
  void list_all_resources(const credentials& auth, fb::ResourceKind kind, std::string org,
                          callback<std::vector<fb::ResourceUnion>> cb, size_t max_items = 100'000);

  // Nodes: registration is authenticated with the node's token; its key is the sender key.
  void register_node(const credentials& node_auth, std::string pattern, std::string arch,
                     std::string name, std::vector<fb::ServiceUserInputT> user_inputs,
                     callback<rpc_reply> cb);
  void unregister_node(const credentials& node_auth, done cb);

  // Agreement records per node.
  void put_agreement(const credentials& auth, const fb::AgreementRecordT& rec, done cb);
  void list_agreements(const credentials& auth, std::string node_org, std::string node_id,
                       callback<std::vector<fb::AgreementRecordT>> cb);
  void delete_agreement(const credentials& auth, std::string node_org, std::string node_id,
                        std::string agreement_id, done cb);

  // Node status: a node stores its latest StatusReport; readers get it with liveness.
  void put_node_status(const credentials& node_auth, const fb::StatusReportT& report, done cb);
  void get_node_status(const credentials& auth, std::string node_org, std::string node_id,
                       callback<fb::NodeStatusT> cb);

  // Switchboard and discovery.
  void get_public_key(const credentials& auth, fb::ResourceKind kind, std::string org,
                      std::string id, callback<key_info> cb);
  void search_pattern_nodes(const credentials& auth, std::string pattern_org, std::string pattern,
                            std::string node_org, std::string page_token, uint32_t limit,
                            callback<node_page> cb);

  // Agbots.
  void agbot_add_pattern(const credentials& auth, std::string agbot_org, std::string agbot_id,
                         const fb::AgbotPatternT& p, done cb);
  void agbot_remove_pattern(const credentials& auth, std::string agbot_org, std::string agbot_id,
                            const fb::AgbotPatternT& p, done cb);
  void agbot_hello(const credentials& auth, done cb);

  // Rollouts: agbots publish progress, anyone who may read the pattern reads it.
  void put_rollout_status(const credentials& auth, const fb::RolloutStatusT& status, done cb);
  void get_rollout_status(const credentials& auth, std::string pattern_org, std::string pattern,
                          callback<std::vector<fb::RolloutStatusT>> cb);

 private:
  void call_void(const credentials& auth, fb::RpcOpUnion op, done cb);
  void list_page(const credentials& auth, fb::ResourceKind kind, std::string org, std::string token,
                 size_t max_items, std::shared_ptr<std::vector<fb::ResourceUnion>> acc,
                 callback<std::vector<fb::ResourceUnion>> cb);

  core::bus::messenger& messenger_;
  core::crypto::public_key exchange_key_;
  core::bus::topics topics_;
  std::chrono::milliseconds timeout_{10'000};
};

// For one-shot programs (the CLI): runs `loop` until `start`'s callback fires and returns what
// it was given. Call from the thread that owns the loop, outside any handler. Reusable: each
// call runs the loop only as long as needed.
template <typename T>
result<T> run_sync(core::loop::event_loop& loop,
                   const std::function<void(client::callback<T>)>& start) {
  std::optional<result<T>> out;
  loop.post([&] { start([&](result<T> r) { out.emplace(std::move(r)); }); });
  while (!out) {
    if (loop.io().run_one() == 0) break;  // stopped: nothing more can happen
  }
  if (!out) return core::error{make_error_code(client_errc::stopped), "event loop stopped"};
  return std::move(*out);
}

}  // namespace hmq::exchange_client

template <>
struct std::is_error_code_enum<hmq::exchange_client::client_errc> : std::true_type {};
