#include "exchange/rpc_error.h"

namespace hmq::exchange {

rpc_error invalid(const std::string& field, const std::string& why) {
  return {fb::RpcStatus::invalid_argument, "invalid field '" + field + "': " + why, field};
}
rpc_error not_found(std::string_view what, std::string_view key) {
  return {
      fb::RpcStatus::not_found, std::string(what) + " '" + std::string(key) + "' not found", {}};
}
rpc_error already_exists(std::string_view what, std::string_view key) {
  return {fb::RpcStatus::already_exists,
          std::string(what) + " '" + std::string(key) + "' already exists",
          {}};
}
rpc_error forbidden(std::string msg) {
  return {fb::RpcStatus::forbidden, std::move(msg), {}};
}
rpc_error internal(const core::error& e) {
  if (e.code == make_error_code(core::store::errc::busy))
    return {fb::RpcStatus::unavailable, "store busy, retry", {}};
  return {fb::RpcStatus::internal, "internal error: " + e.message(), {}};
}

}  // namespace hmq::exchange
