#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/common/result.h"
#include "exchange/db.h"

// How an exchange operation refuses: an RpcStatus, a message for the operator and the field at
// fault. Every handler step returns `step`: nullopt to go on, an error to stop and answer it.
namespace hmq::exchange {

struct rpc_error {
  fb::RpcStatus status = fb::RpcStatus::internal;
  std::string message;
  std::string field;
};

using step = std::optional<rpc_error>;

// Returns from the enclosing step function when `expr` (a step) holds an error.
#define HMQ_CHECK(expr)              \
  do {                               \
    if (auto e_ = (expr)) return e_; \
  } while (0)

rpc_error invalid(const std::string& field, const std::string& why);
rpc_error not_found(std::string_view what, std::string_view key);
rpc_error already_exists(std::string_view what, std::string_view key);
rpc_error forbidden(std::string msg);
// A store failure: `unavailable` when the store is busy (the caller may retry), else internal.
rpc_error internal(const core::error& e);

}  // namespace hmq::exchange
