// Status and StatusOr<T>: the error currency of the core and everything above it.
//
// No exceptions cross module or plugin boundaries; functions that can fail return Status or
// StatusOr<T>. Propagate with TSR_RETURN_IF_ERROR / TSR_ASSIGN_OR_RETURN.
#ifndef TESSERA_CORE_STATUS_H_
#define TESSERA_CORE_STATUS_H_

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tessera {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,    // the caller's input is bad (malformed file, bad flag, bad request)
  kNotFound,           // a file, tensor, model or plugin is not there
  kUnimplemented,      // a feature this build or this backend does not have
  kUnsupported,        // a valid request this device cannot serve (the core falls back)
  kOutOfRange,         // an index or size beyond a limit
  kResourceExhausted,  // out of memory, queue full, budget exceeded
  kFailedPrecondition,
  kDeviceError,  // a backend or driver failed
  kAbiMismatch,  // a plugin built for another ABI
  kInternal,     // a bug: an invariant broke
};

// Returns a stable lower-case name ("invalid_argument", ...). Thread-safe.
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: <message>", or "ok".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>". No-op on OK.
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() {
  return Status();
}
inline Status InvalidArgument(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status NotFound(std::string m) {
  return Status(StatusCode::kNotFound, std::move(m));
}
inline Status Unimplemented(std::string m) {
  return Status(StatusCode::kUnimplemented, std::move(m));
}
inline Status Unsupported(std::string m) {
  return Status(StatusCode::kUnsupported, std::move(m));
}
inline Status OutOfRange(std::string m) {
  return Status(StatusCode::kOutOfRange, std::move(m));
}
inline Status ResourceExhausted(std::string m) {
  return Status(StatusCode::kResourceExhausted, std::move(m));
}
inline Status FailedPrecondition(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status DeviceError(std::string m) {
  return Status(StatusCode::kDeviceError, std::move(m));
}
inline Status Internal(std::string m) {
  return Status(StatusCode::kInternal, std::move(m));
}

// Either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& s) : status_(s) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Internal("StatusOr constructed from an OK status without a value");
  }
  StatusOr(Status&& s) : status_(std::move(s)) {  // NOLINT
    if (status_.ok()) status_ = Internal("StatusOr constructed from an OK status without a value");
  }
  StatusOr(const T& v) : value_(v) {}        // NOLINT
  StatusOr(T&& v) : value_(std::move(v)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok().
  T& value() & {
    CheckOk();
    return *value_;
  }
  const T& value() const& {
    CheckOk();
    return *value_;
  }
  T&& value() && {
    CheckOk();
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void CheckOk() const {
    if (!ok()) {
      std::fprintf(stderr, "StatusOr::value() on error: %s\n", status_.ToString().c_str());
      std::abort();
    }
  }
  Status status_;
  std::optional<T> value_;
};

}  // namespace tessera

#define TSR_STATUS_CONCAT_INNER_(a, b) a##b
#define TSR_STATUS_CONCAT_(a, b) TSR_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` yields a non-OK Status.
#define TSR_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::tessera::Status tsr_status_ = (expr);    \
    if (!tsr_status_.ok()) return tsr_status_; \
  } while (0)

// `lhs = value of expr` or returns its error. lhs may declare a variable: `auto x`.
#define TSR_ASSIGN_OR_RETURN(lhs, expr) \
  TSR_ASSIGN_OR_RETURN_IMPL_(TSR_STATUS_CONCAT_(tsr_statusor_, __LINE__), lhs, expr)
#define TSR_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

// Invariant checks. TSR_CHECK is always on; TSR_DCHECK only in debug builds (hot paths).
#define TSR_CHECK(cond)                                                             \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
#ifdef NDEBUG
#define TSR_DCHECK(cond) \
  do {                   \
  } while (0)
#else
#define TSR_DCHECK(cond) TSR_CHECK(cond)
#endif

#endif  // TESSERA_CORE_STATUS_H_
