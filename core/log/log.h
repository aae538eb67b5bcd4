#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

// Logging: one named spdlog logger per module ("bus", "wire", "exchange", ...), all writing to
// stderr with the same format. Lines about an agreement or node carry its id.
namespace hmq::core::log {

// Set the level for all loggers ("trace", "debug", "info", "warn", "error", "off").
// Returns false (and leaves the level alone) for an unknown name.
bool set_level(std::string_view level);

// The logger for `module`, created on first use.
std::shared_ptr<spdlog::logger> get(const std::string& module);

}  // namespace hmq::core::log
