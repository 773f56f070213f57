// Status and Result<T>: how every module reports an expected failure.
//
// Exceptions never cross a module boundary. Cap'n Proto's kj::Exception is
// caught where stored bytes are decoded and becomes Code::kCorruption.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace okr {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,         // the entity, event or file does not exist
    kVersionMismatch,  // an expected version did not match; nothing was written (412
                       // version_mismatch)
    kAlreadyExists,    // the id is taken; nothing was written (409 already_exists)
    kConflict,  // the state forbids it now (a closed cycle); nothing was written (409 conflict)
    kPermissionDenied,  // the principal may not do this; nothing was written
    kInvalid,           // the request breaks a rule; nothing was written
    kCorruption,        // stored bytes fail a check (gap, hash, decode)
    kIOError,           // the storage engine failed; the write may be retried
  };

  Status() = default;
  static Status Ok() { return Status(); }

  // Makes a failed Status of one code. The makers below are its only
  // instances, so a call site reads Status::NotFound("msg", "field") and
  // each code is named once. Stateless; safe from any thread.
  struct Maker {
    Code code;
    Status operator()(std::string msg, std::string field = "") const {
      assert(code != Code::kOk && "a failure needs a failure code");
      return Status(code, std::move(msg), std::move(field));
    }
  };
  // Storage failures are about no request field, so their makers take none.
  struct StorageMaker {
    Code code;
    Status operator()(std::string msg) const { return Maker{code}(std::move(msg)); }
  };
  static constexpr Maker NotFound{Code::kNotFound};
  static constexpr Maker VersionMismatch{Code::kVersionMismatch};
  static constexpr Maker AlreadyExists{Code::kAlreadyExists};
  static constexpr Maker Conflict{Code::kConflict};
  static constexpr Maker PermissionDenied{Code::kPermissionDenied};
  static constexpr Maker Invalid{Code::kInvalid};
  static constexpr StorageMaker Corruption{Code::kCorruption};
  static constexpr StorageMaker IOError{Code::kIOError};

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // The request field the failure is about, when there is one ("target").
  const std::string& field() const { return field_; }
  std::string ToString() const;

 private:
  Status(Code code, std::string message, std::string field)
      : code_(code), message_(std::move(message)), field_(std::move(field)) {}

  Code code_ = Code::kOk;
  std::string message_;
  std::string field_;
};

// A value or the Status saying why there is none. Never holds both.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "a Result without a value needs a failed Status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace okr

// Returns from the calling function with the Status of `expr` when it
// failed. `expr` is evaluated once. For functions returning Status or a
// Result<T> (a failed Status converts to either).
#define OKR_RETURN_IF_ERROR(expr)                          \
  do {                                                     \
    ::okr::Status okr_status_macro_ = (expr);              \
    if (!okr_status_macro_.ok()) return okr_status_macro_; \
  } while (0)

// `lhs = value of expr`, where expr is a Result<T>; returns its Status from
// the calling function when it holds none. `lhs` may declare a variable
// (`OKR_ASSIGN_OR_RETURN(auto x, F())`). Expands to several statements: not
// for the body of an unbraced if.
#define OKR_ASSIGN_OR_RETURN(lhs, expr) \
  OKR_ASSIGN_OR_RETURN_IMPL_(OKR_STATUS_CONCAT_(okr_result_, __LINE__), lhs, expr)
#define OKR_ASSIGN_OR_RETURN_IMPL_(result, lhs, expr) \
  auto result = (expr);                               \
  if (!result.ok()) return result.status();           \
  lhs = std::move(result).value()
#define OKR_STATUS_CONCAT_(a, b) OKR_STATUS_CONCAT_IMPL_(a, b)
#define OKR_STATUS_CONCAT_IMPL_(a, b) a##b
