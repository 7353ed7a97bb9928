// Status helpers shared by every module. Debian's Abseil (20220623) ships
// absl::Status but not the propagation macros, so they are defined once here.
//
//   absl::StatusOr<Tensor> Load(...);
//   absl::Status Run() {
//     VPTQ_ASSIGN_OR_RETURN(Tensor t, Load(path));
//     VPTQ_RETURN_IF_ERROR(Check(t));
//     return absl::OkStatus();
//   }
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define VPTQ_STATUS_CONCAT_INNER_(a, b) a##b
#define VPTQ_STATUS_CONCAT_(a, b) VPTQ_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define VPTQ_RETURN_IF_ERROR(expr)                      \
  do {                                                  \
    ::absl::Status vptq_status_ = (expr);               \
    if (!vptq_status_.ok()) return vptq_status_;        \
  } while (false)

// `lhs` may be a declaration (`auto x`, `Tensor t`) or an existing lvalue.
#define VPTQ_ASSIGN_OR_RETURN(lhs, rexpr)                                     \
  VPTQ_ASSIGN_OR_RETURN_IMPL_(VPTQ_STATUS_CONCAT_(vptq_statusor_, __LINE__), \
                              lhs, rexpr)

#define VPTQ_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

namespace vptq {

// Adds context in front of an error message, keeping its code:
//   return Annotate(s, "reading ", path);
template <typename... Args>
absl::Status Annotate(const absl::Status& s, const Args&... args) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(args..., ": ", s.message()));
}

}  // namespace vptq
