#pragma once

#include <cassert>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace hmq::core {

// An expected failure (bad input, broker gone, bad config): a module error code from that
// module's errc enum plus a human-readable detail for logs and operators.
struct error {
  std::error_code code;
  std::string detail;

  // "<category>: <code message>: <detail>" (detail omitted when empty).
  std::string message() const {
    std::string m = std::string(code.category().name()) + ": " + code.message();
    if (!detail.empty()) m += ": " + detail;
    return m;
  }
};

// Value or error. Modules return this for every expected failure (house style, tier one).
template <typename T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT implicit
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const error& err() const {
    assert(!ok());
    return std::get<1>(v_);
  }
  std::error_code code() const { return ok() ? std::error_code{} : err().code; }

 private:
  std::variant<T, error> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error e) : e_(std::move(e)), failed_(true) {}  // NOLINT implicit

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const error& err() const {
    assert(failed_);
    return e_;
  }
  std::error_code code() const { return failed_ ? e_.code : std::error_code{}; }

 private:
  error e_;
  bool failed_ = false;
};

inline result<void> ok() {
  return {};
}

}  // namespace hmq::core
