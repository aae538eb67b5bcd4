#pragma once

#include <span>
#include <vector>

#include "core/common/result.h"
#include "core/store/store.h"

// Helpers shared by the files that implement exchange::db (db.cc, db_agbots.cc, db_services.cc,
// db_agreements.cc); not part of db's interface.
namespace hmq::exchange::db_rows {

inline std::span<const uint8_t> span_of(const std::vector<uint8_t>& v) {
  return {v.data(), v.size()};
}

// Does the statement return a row? Resets it for the next use.
core::result<bool> exists(core::store::statement* st);

}  // namespace hmq::exchange::db_rows
