#include "coordinator/path_policy.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace vptq::coordinator {
namespace {

absl::Status CheckSyntax(absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("path is empty");
  if (path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("path contains a NUL byte");
  }
  if (path.front() != '/') {
    return absl::InvalidArgumentError(absl::StrCat("path '", path, "' must be absolute"));
  }
  if (path.size() >= PATH_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("path '", path.substr(0, 64), "...' is too long"));
  }
  return absl::OkStatus();
}

// realpath(3); errno-based error for a missing path.
absl::StatusOr<std::string> RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat("'", path, "' does not exist"));
    }
    if (err == EACCES) {
      return absl::PermissionDeniedError(absl::StrCat("'", path, "' is not accessible"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve '", path, "': ", std::strerror(err)));
  }
  return std::string(buf);
}

absl::StatusOr<std::vector<std::string>> ResolveRoots(const std::vector<std::string>& roots,
                                                      absl::string_view kind) {
  std::vector<std::string> out;
  for (const std::string& r : roots) {
    if (r.empty() || r.front() != '/') {
      return absl::FailedPreconditionError(
          absl::StrCat(kind, " root '", r, "' must be an absolute path"));
    }
    auto real = RealPath(r);
    if (!real.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(kind, " root '", r, "': ", real.status().message()));
    }
    struct stat st;
    if (::stat(real->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(kind, " root '", r, "' is not a directory"));
    }
    out.push_back(*real);
  }
  return out;
}

absl::Status Outside(absl::string_view path, absl::string_view resolved,
                     const std::vector<std::string>& roots, absl::string_view kind) {
  return absl::PermissionDeniedError(absl::StrCat(
      "path '", path, "' resolves to '", resolved, "', which is outside the ", kind,
      " roots [", absl::StrJoin(roots, ", "), "]; use a path under one of them"));
}

}  // namespace

bool IsUnderRoot(absl::string_view path, absl::string_view root) {
  if (root == "/") return !path.empty() && path.front() == '/';
  if (path.size() < root.size() || path.substr(0, root.size()) != root) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

absl::StatusOr<PathPolicy> PathPolicy::Create(const std::vector<std::string>& input_roots,
                                              const std::vector<std::string>& output_roots) {
  PathPolicy p;
  auto in = ResolveRoots(input_roots, "input");
  if (!in.ok()) return in.status();
  auto out = ResolveRoots(output_roots, "output");
  if (!out.ok()) return out.status();
  p.input_roots_ = std::move(*in);
  p.output_roots_ = std::move(*out);
  return p;
}

absl::StatusOr<std::string> PathPolicy::ResolveInput(absl::string_view path) const {
  if (auto s = CheckSyntax(path); !s.ok()) return s;
  auto real = RealPath(std::string(path));
  if (!real.ok()) return real.status();
  for (const std::string& root : input_roots_) {
    if (IsUnderRoot(*real, root)) return *real;
  }
  return Outside(path, *real, input_roots_, "input");
}

absl::StatusOr<std::string> PathPolicy::ResolveOutput(absl::string_view path) const {
  if (auto s = CheckSyntax(path); !s.ok()) return s;
  // Walk up to the deepest existing ancestor, remembering the missing tail.
  std::vector<std::string> parts = absl::StrSplit(path.substr(1), '/', absl::SkipEmpty());
  std::vector<std::string> tail;
  std::string existing;
  while (true) {
    existing = "/" + absl::StrJoin(parts, "/");
    struct stat st;
    if (::lstat(existing.c_str(), &st) == 0) break;
    if (parts.empty()) break;
    tail.insert(tail.begin(), parts.back());
    parts.pop_back();
  }
  for (const std::string& t : tail) {
    if (t == "." || t == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          "output path '", path, "' has '", t, "' in a part that does not exist yet"));
    }
  }
  auto real = RealPath(existing);
  if (!real.ok()) return real.status();
  std::string resolved = *real;
  for (const std::string& t : tail) {
    if (resolved != "/") resolved += "/";
    resolved += t;
  }
  for (const std::string& root : output_roots_) {
    if (IsUnderRoot(resolved, root) && resolved != root) return resolved;
  }
  return Outside(path, resolved, output_roots_, "output");
}

}  // namespace vptq::coordinator
