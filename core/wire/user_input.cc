#include "core/wire/user_input.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace hmq::core::wire {
namespace {

std::string got(std::string_view value) {
  constexpr size_t shown = 64;  // a hostile value is not echoed whole into logs
  std::string v(value.substr(0, shown));
  if (value.size() > shown) v += "...";
  return " (got '" + v + "')";
}

}  // namespace

bool known_input_type(std::string_view type) {
  return type == "string" || type == "int" || type == "float" || type == "boolean" ||
         type == "bool" || type == "list of strings";
}

std::optional<std::string> typed_value_error(std::string_view type, std::string_view value) {
  const std::string v(value);
  if (type == "string") return std::nullopt;
  if (type == "int") {
    char* end = nullptr;
    errno = 0;
    std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || errno != 0 || *end != '\0') return "must be an int for type 'int'" + got(v);
    return std::nullopt;
  }
  if (type == "float") {
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(d))
      return "must be a number for type 'float'" + got(v);
    return std::nullopt;
  }
  if (type == "boolean" || type == "bool") {
    if (v != "true" && v != "false") return "must be true or false for type 'boolean'" + got(v);
    return std::nullopt;
  }
  if (type == "list of strings") {
    auto j = nlohmann::json::parse(v, nullptr, false);
    bool ok = j.is_array();
    if (ok)
      for (const auto& e : j) ok = ok && e.is_string();
    if (!ok) return "must be a JSON array of strings for type 'list of strings'" + got(v);
    return std::nullopt;
  }
  return "has an unknown type '" + std::string(type.substr(0, 32)) + "'";
}

}  // namespace hmq::core::wire
