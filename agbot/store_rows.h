#pragma once

#include <vector>

#include "core/common/result.h"
#include "core/store/store.h"

// The row loop both stores of agbot.db (agreement_store, rollout_store) read their tables with.
namespace hmq::agbot {

// Steps `st` to its end; `read` turns each row into a T.
template <typename T, typename F>
core::result<std::vector<T>> read_rows(core::store::statement& st, F read) {
  std::vector<T> out;
  while (true) {
    auto row = st.step();
    if (!row) return row.err();
    if (!*row) break;
    out.push_back(read(st));
  }
  return out;
}

}  // namespace hmq::agbot
