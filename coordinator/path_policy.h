// PathPolicy: the only paths a job may name are under configured roots.
//
// Contract:
//  - Roots are resolved with realpath(3) when the policy is created; a root
//    that does not exist or is not a directory is FAILED_PRECONDITION.
//  - ResolveInput(p): p must be absolute and exist; its realpath (every
//    symlink and ".." resolved) must equal an input root or lie below one.
//    So "/models/../etc" and a symlink inside a root pointing outside are
//    both refused. Errors: INVALID_ARGUMENT (empty / relative / NUL),
//    NOT_FOUND (missing), PERMISSION_DENIED (outside every root).
//  - ResolveOutput(p): p may not exist yet. The deepest existing ancestor is
//    realpath'ed; the components below it must be plain names (no "." or
//    ".."), and the result must lie strictly below an output root.
//  - The answer is about the moment of the call (a path can change later);
//    writers should still create outputs without following symlinks.
//  - Immutable after Create; thread-safe.
//
//   VPTQ_ASSIGN_OR_RETURN(PathPolicy paths, PathPolicy::Create({"/models"}, {"/out"}));
//   VPTQ_ASSIGN_OR_RETURN(std::string model_dir, paths.ResolveInput(spec.model().path()));
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"

namespace vptq::coordinator {

class PathPolicy {
 public:
  static absl::StatusOr<PathPolicy> Create(const std::vector<std::string>& input_roots,
                                           const std::vector<std::string>& output_roots);

  absl::StatusOr<std::string> ResolveInput(absl::string_view path) const;
  absl::StatusOr<std::string> ResolveOutput(absl::string_view path) const;

  const std::vector<std::string>& input_roots() const { return input_roots_; }
  const std::vector<std::string>& output_roots() const { return output_roots_; }

 private:
  std::vector<std::string> input_roots_;   // realpaths
  std::vector<std::string> output_roots_;  // realpaths
};

// True when `path` (already resolved) equals `root` or lies below it.
bool IsUnderRoot(absl::string_view path, absl::string_view root);

}  // namespace vptq::coordinator
