// QuantLayout: derived sizes, bit accounting and validation.
#include <bit>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "worker/quant/quantized_linear.h"

namespace vptq::quant {
namespace {

// The stock format stores perm and outlier indices as uint16.
constexpr int64_t kMaxUint16Columns = 65535;
constexpr int64_t kMaxCentroids = 65536;  // 16 index bits

int Log2(int64_t x) {
  return x > 0 ? std::bit_width(static_cast<uint64_t>(x)) - 1 : 0;
}
bool IsPowerOfTwo(int64_t x) {
  return x > 0 && std::has_single_bit(static_cast<uint64_t>(x));
}
int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

absl::Status Invalid(const std::string& msg) {
  return absl::InvalidArgumentError(absl::StrCat("quant layout: ", msg));
}

}  // namespace

int QuantLayout::index_bits() const { return Log2(num_centroids); }
int QuantLayout::res_index_bits() const {
  return num_res_centroids > 0 ? Log2(num_res_centroids) : 0;
}
int64_t QuantLayout::vector_rows() const {
  return vector_len > 0 ? CeilDiv(out_features, vector_len) : 0;
}
int64_t QuantLayout::outlier_vector_rows() const {
  return outlier_size > 0 && outlier_vector_len > 0
             ? CeilDiv(out_features, outlier_vector_len)
             : 0;
}
int64_t QuantLayout::packed_words_per_row() const {
  return CeilDiv(group_size * (index_bits() + res_index_bits()), 32);
}

double QuantLayout::BitsPerWeight(int element_bits) const {
  const double m = static_cast<double>(out_features);
  const double n = static_cast<double>(in_features);
  const double e = element_bits;
  const double os = static_cast<double>(outlier_size);
  double bits = (n - os) / n * (index_bits() + res_index_bits()) /
                static_cast<double>(vector_len);
  double codebook = static_cast<double>(vector_len) * group_num *
                    (num_centroids + num_res_centroids);
  if (outlier_size > 0) {
    bits += os / n * Log2(outlier_num_centroids) /
            static_cast<double>(outlier_vector_len);
    codebook += static_cast<double>(outlier_vector_len) * outlier_num_centroids;
  }
  return bits + e * codebook / (m * n) + 2.0 * e / m;
}

double QuantLayout::StoredBitsPerWeight(int element_bits) const {
  const double e = element_bits;
  double bits = 32.0 * group_num * vector_rows() * packed_words_per_row();
  bits += e * static_cast<double>(group_num) * vector_len *
          (num_centroids + num_res_centroids);
  if (outlier_size > 0) {
    bits += 16.0 * outlier_vector_rows() * outlier_size;
    bits += e * static_cast<double>(outlier_vector_len) * outlier_num_centroids;
  }
  // perm (not written when perm is off and it cannot fit uint16).
  if (enable_perm || in_features <= kMaxUint16Columns) bits += 16.0 * in_features;
  bits += 2.0 * e * in_features;  // weight_scale, weight_bias
  return bits / (static_cast<double>(out_features) * in_features);
}

absl::Status QuantLayout::Validate() const {
  if (out_features < 1 || in_features < 1) {
    return Invalid(absl::StrCat("out_features (", out_features,
                                ") and in_features (", in_features,
                                ") must be at least 1"));
  }
  if (vector_len < 1) {
    return Invalid(absl::StrCat("vector_len is ", vector_len,
                                "; use a vector length of at least 1"));
  }
  if (!IsPowerOfTwo(num_centroids) || num_centroids < 2 ||
      num_centroids > kMaxCentroids) {
    return Invalid(absl::StrCat(
        "num_centroids is ", num_centroids,
        "; use a power of two from 2 to 65536 (1 to 16 index bits)"));
  }
  if (num_res_centroids != 0 &&
      (!IsPowerOfTwo(num_res_centroids) || num_res_centroids < 2)) {
    return Invalid(absl::StrCat("num_res_centroids is ", num_res_centroids,
                                "; use 0 (no residual) or a power of two >= 2"));
  }
  if (num_res_centroids > num_centroids) {
    return Invalid(absl::StrCat(
        "num_res_centroids (", num_res_centroids, ", ", res_index_bits(),
        " bits) exceeds num_centroids (", num_centroids, ", ", index_bits(),
        " bits): the stock loader masks residual indices to the index width; "
        "use num_res_centroids <= num_centroids"));
  }
  if (group_num < 1 || group_size < 1) {
    return Invalid(absl::StrCat("group_num (", group_num, ") and group_size (",
                                group_size, ") must be at least 1"));
  }
  if (outlier_size < 0) {
    return Invalid(absl::StrCat("outlier_size is ", outlier_size,
                                "; use 0 or more columns"));
  }
  if (group_num * group_size + outlier_size != in_features) {
    return Invalid(absl::StrCat(
        "group_num*group_size + outlier_size = ", group_num, "*", group_size,
        " + ", outlier_size, " = ", group_num * group_size + outlier_size,
        " but in_features is ", in_features,
        "; the groups and outlier columns must cover every input column once"));
  }
  if (outlier_size > 0) {
    // The stock loader turns outliers on only when v0 > 1.
    if (outlier_vector_len < 2) {
      return Invalid(absl::StrCat(
          "outlier_vector_len is ", outlier_vector_len,
          " with ", outlier_size,
          " outlier columns; the stock loader ignores outliers unless "
          "outlier_vector_len >= 2"));
    }
    if (!IsPowerOfTwo(outlier_num_centroids) || outlier_num_centroids < 2 ||
        outlier_num_centroids > kMaxCentroids) {
      return Invalid(absl::StrCat(
          "outlier_num_centroids is ", outlier_num_centroids,
          "; use a power of two from 2 to 65536 (outlier indices are uint16)"));
    }
  } else if (outlier_vector_len != 0 || outlier_num_centroids != 0) {
    return Invalid(absl::StrCat(
        "outlier_size is 0 but outlier_vector_len is ", outlier_vector_len,
        " and outlier_num_centroids is ", outlier_num_centroids,
        "; set both to 0 when there are no outlier columns"));
  }
  if (enable_perm && in_features > kMaxUint16Columns) {
    return Invalid(absl::StrCat(
        "in_features is ", in_features,
        " with enable_perm; perm is stored as uint16, so use at most 65535 "
        "input columns or turn perm off"));
  }
  return absl::OkStatus();
}

}  // namespace vptq::quant
