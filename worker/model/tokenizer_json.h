// Typed, non-throwing field access for the tokenizer.json loaders. Every
// error names the JSON location (`where`, e.g. "pre_tokenizer.pretokenizers[1]")
// and the field, so a bad file can be fixed from the message alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace vptq::tokenizer {

// Debian's Abseil has its own string_view type; this converts for StrCat and
// heterogeneous lookups.
inline absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

// The "type" of a component object, or an error when it has none.
absl::StatusOr<std::string> ComponentType(const nlohmann::json& j,
                                          absl::string_view where);

absl::StatusOr<std::string> GetString(const nlohmann::json& j,
                                      absl::string_view key, absl::string_view where);
// Missing or null fields give `fallback`.
absl::StatusOr<std::string> GetStringOr(const nlohmann::json& j, absl::string_view key,
                                        absl::string_view where,
                                        absl::string_view fallback);
absl::StatusOr<bool> GetBoolOr(const nlohmann::json& j, absl::string_view key,
                               absl::string_view where, bool fallback);
absl::StatusOr<int64_t> GetIntOr(const nlohmann::json& j, absl::string_view key,
                                 absl::string_view where, int64_t fallback);
// A string field that may be null or missing.
absl::StatusOr<std::optional<std::string>> GetOptionalString(
    const nlohmann::json& j, absl::string_view key, absl::string_view where);

// A string holding exactly one Unicode character (Metaspace replacement,
// Strip content).
absl::StatusOr<std::string> GetSingleChar(const nlohmann::json& j,
                                          absl::string_view key,
                                          absl::string_view where,
                                          absl::string_view fallback);

inline absl::Status UnsupportedType(absl::string_view kind, absl::string_view type,
                                    absl::string_view supported) {
  return absl::FailedPreconditionError(
      absl::StrCat("unsupported ", kind, " type '", type,
                   "' in tokenizer.json (supported: ", supported, ")"));
}

}  // namespace vptq::tokenizer
