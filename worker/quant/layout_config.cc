// config_for_layers entry <-> QuantLayout. The stock loader passes every key
// to VQuantLinear's constructor, so the key set is exact: a missing key fails
// there and an extra one breaks it.
#include <algorithm>
#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/status.h"
#include "worker/quant/quantized_linear.h"

namespace vptq::quant {
namespace {

// In the order the stock writer emits them (see testdata/vptq_format/).
constexpr std::array<const char*, 13> kKeys = {
    "in_features",  "out_features",     "vector_lens", "num_centroids",
    "num_res_centroids", "group_num",   "group_size",  "outlier_size",
    "indices_as_float",  "enable_norm", "enable_perm", "is_indice_packed",
    "bias"};

absl::Status Invalid(absl::string_view key, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("config_for_layers entry: key '", key, "' ", what));
}

absl::StatusOr<int64_t> Int(const nlohmann::json& e, absl::string_view key) {
  const nlohmann::json& v = e.at(std::string(key));
  if (!v.is_number_integer()) {
    return Invalid(key, absl::StrCat("must be an integer, got ", v.dump()));
  }
  return v.get<int64_t>();
}

absl::StatusOr<bool> Bool(const nlohmann::json& e, absl::string_view key) {
  const nlohmann::json& v = e.at(std::string(key));
  if (!v.is_boolean()) {
    return Invalid(key, absl::StrCat("must be true or false, got ", v.dump()));
  }
  return v.get<bool>();
}

// [outlier value, main value] pair of integers.
absl::StatusOr<std::array<int64_t, 2>> Pair(const nlohmann::json& e,
                                            absl::string_view key) {
  const nlohmann::json& v = e.at(std::string(key));
  if (!v.is_array() || v.size() != 2 || !v[0].is_number_integer() ||
      !v[1].is_number_integer()) {
    return Invalid(key, absl::StrCat("must be a list of two integers, got ",
                                     v.dump()));
  }
  return std::array<int64_t, 2>{v[0].get<int64_t>(), v[1].get<int64_t>()};
}

absl::StatusOr<QuantLayout> Parse(const nlohmann::json& e) {
  QuantLayout l;
  VPTQ_ASSIGN_OR_RETURN(l.in_features, Int(e, "in_features"));
  VPTQ_ASSIGN_OR_RETURN(l.out_features, Int(e, "out_features"));
  VPTQ_ASSIGN_OR_RETURN(l.group_num, Int(e, "group_num"));
  VPTQ_ASSIGN_OR_RETURN(l.group_size, Int(e, "group_size"));
  VPTQ_ASSIGN_OR_RETURN(l.outlier_size, Int(e, "outlier_size"));
  VPTQ_ASSIGN_OR_RETURN(auto vector_lens, Pair(e, "vector_lens"));
  VPTQ_ASSIGN_OR_RETURN(auto num_centroids, Pair(e, "num_centroids"));
  VPTQ_ASSIGN_OR_RETURN(auto num_res_centroids, Pair(e, "num_res_centroids"));
  VPTQ_ASSIGN_OR_RETURN(bool indices_as_float, Bool(e, "indices_as_float"));
  VPTQ_ASSIGN_OR_RETURN(l.enable_norm, Bool(e, "enable_norm"));
  VPTQ_ASSIGN_OR_RETURN(l.enable_perm, Bool(e, "enable_perm"));
  VPTQ_ASSIGN_OR_RETURN(bool packed, Bool(e, "is_indice_packed"));
  VPTQ_ASSIGN_OR_RETURN(l.has_bias, Bool(e, "bias"));

  if (indices_as_float) {
    return Invalid("indices_as_float",
                   "is true; only integer indices are supported, write false");
  }
  if (!packed) {
    return Invalid("is_indice_packed",
                   "is false; only packed int32 indices are supported");
  }
  l.vector_len = vector_lens[1];
  l.num_centroids = num_centroids[1];
  if (num_res_centroids[0] != -1) {
    return Invalid("num_res_centroids",
                   absl::StrCat("[0] is ", num_res_centroids[0],
                                "; outliers have no residual, write -1"));
  }
  if (num_res_centroids[1] == -1) {
    l.num_res_centroids = 0;
  } else if (num_res_centroids[1] > 0) {
    l.num_res_centroids = num_res_centroids[1];
  } else {
    return Invalid("num_res_centroids",
                   absl::StrCat("[1] is ", num_res_centroids[1],
                                "; write -1 for no residual or K_r > 0"));
  }
  if (l.outlier_size > 0) {
    l.outlier_vector_len = vector_lens[0];
    l.outlier_num_centroids = num_centroids[0];
  } else if (vector_lens[0] != -1 || num_centroids[0] != -1) {
    return Invalid("vector_lens",
                   absl::StrCat("[0] is ", vector_lens[0],
                                " and num_centroids[0] is ", num_centroids[0],
                                " but outlier_size is 0; write -1 for both"));
  }
  VPTQ_RETURN_IF_ERROR(Annotate(l.Validate(), "config_for_layers entry"));
  return l;
}

}  // namespace

nlohmann::ordered_json LayoutToConfig(const QuantLayout& l) {
  const bool outliers = l.outlier_size > 0;
  nlohmann::ordered_json e;
  e["in_features"] = l.in_features;
  e["out_features"] = l.out_features;
  e["vector_lens"] = {outliers ? l.outlier_vector_len : -1, l.vector_len};
  e["num_centroids"] = {outliers ? l.outlier_num_centroids : -1,
                        l.num_centroids};
  e["num_res_centroids"] = {
      -1, l.num_res_centroids > 0 ? l.num_res_centroids : int64_t{-1}};
  e["group_num"] = l.group_num;
  e["group_size"] = l.group_size;
  e["outlier_size"] = l.outlier_size;
  e["indices_as_float"] = false;
  // Norm off is written as scale 1, bias 0 with norm on (DESIGN.md §3).
  e["enable_norm"] = true;
  e["enable_perm"] = l.enable_perm;
  e["is_indice_packed"] = true;
  e["bias"] = l.has_bias;
  return e;
}

absl::StatusOr<QuantLayout> LayoutFromConfig(const nlohmann::json& entry) {
  if (!entry.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config_for_layers entry must be an object, got ", entry.dump()));
  }
  for (const auto& [key, value] : entry.items()) {
    if (std::none_of(kKeys.begin(), kKeys.end(),
                     [&key](const char* k) { return key == k; })) {
      return Invalid(key, absl::StrCat("is not a stock key (it breaks the "
                                       "stock loader); allowed: ",
                                       absl::StrJoin(kKeys, ", ")));
    }
  }
  for (const char* key : kKeys) {
    if (!entry.contains(key)) return Invalid(key, "is missing");
  }
  return Parse(entry);
}

}  // namespace vptq::quant
