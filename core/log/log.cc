#include "core/log/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace hmq::core::log {
namespace {

std::mutex mu;
spdlog::level::level_enum current = spdlog::level::info;

}  // namespace

bool set_level(std::string_view level) {
  auto l = spdlog::level::from_str(std::string(level));
  // from_str answers "off" for anything it does not know; only accept "off" when asked for.
  if (l == spdlog::level::off && level != "off") return false;
  std::lock_guard lk(mu);
  current = l;
  spdlog::apply_all([l](const std::shared_ptr<spdlog::logger>& lg) { lg->set_level(l); });
  return true;
}

std::shared_ptr<spdlog::logger> get(const std::string& module) {
  std::lock_guard lk(mu);
  if (auto lg = spdlog::get(module)) return lg;
  auto lg = spdlog::stderr_color_mt(module);
  lg->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%n] %v");
  lg->set_level(current);
  return lg;
}

}  // namespace hmq::core::log
