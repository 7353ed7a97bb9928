// Dequantize: the reference reconstruction of the dense weight, step for step
// as the stock loader does it, in float32 (which the golden vectors in
// testdata/vptq_format/ match bit for bit).
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/quant/quantized_linear.h"

namespace vptq::quant {
namespace {

// Codebook rows selected by index: codebooks (G, K, v), idx (G, R, C) ->
// (G, R, C, v).
torch::Tensor Gather(const torch::Tensor& codebooks, const torch::Tensor& idx) {
  const int64_t g = codebooks.size(0);
  const int64_t k = codebooks.size(1);
  const int64_t v = codebooks.size(2);
  const torch::Tensor offsets =
      torch::arange(g, idx.options()).mul(k).view({g, 1, 1});
  return codebooks.reshape({g * k, v})
      .index_select(0, idx.add(offsets).reshape(-1))
      .reshape({g, idx.size(1), idx.size(2), v});
}

torch::Tensor DequantizeValidated(const QuantizedLinear& q) {
  const QuantLayout& l = q.layout;
  const torch::Device device = q.centroids.device();
  const auto f32 = torch::TensorOptions().device(device).dtype(torch::kFloat);
  const auto i64 = torch::TensorOptions().device(device).dtype(torch::kLong);
  const int64_t m = l.out_features;
  const int64_t rows = l.vector_rows();

  // (G, rows, group_size, v): vector of stored column c, vector-row r.
  torch::Tensor vecs = Gather(q.centroids.to(f32), q.indices.to(i64));
  if (l.num_res_centroids > 0) {
    vecs = vecs.add(Gather(q.res_centroids.to(f32), q.res_indices.to(i64)));
  }
  // Element t of vector (g, r, c) is row r*v + t of column g*group_size + c.
  torch::Tensor stored =
      vecs.permute({1, 3, 0, 2})
          .reshape({rows * l.vector_len, l.group_num * l.group_size})
          .narrow(0, 0, m);

  if (l.outlier_size > 0) {
    const int64_t rows0 = l.outlier_vector_rows();
    const int64_t v0 = l.outlier_vector_len;
    torch::Tensor outlier =
        q.outlier_centroids.to(f32)
            .index_select(0, q.outlier_indices.to(i64).reshape(-1))
            .reshape({rows0, l.outlier_size, v0})
            .permute({0, 2, 1})
            .reshape({rows0 * v0, l.outlier_size})
            .narrow(0, 0, m);
    stored = torch::cat({outlier, stored}, 1);
  }

  // Stored column j is original column perm[j].
  torch::Tensor w;
  if (l.enable_perm) {
    w = torch::empty({m, l.in_features}, f32);
    w.index_copy_(1, q.perm.to(i64), stored);
  } else {
    w = stored.contiguous();
  }
  if (l.enable_norm) {
    // Two roundings, multiply then add, as the loader does (no fused op).
    w = w.mul(q.scale.to(f32)).add(q.bias_norm.to(f32));
  }
  return w.contiguous();
}

}  // namespace

absl::StatusOr<torch::Tensor> DequantizeChecked(const QuantizedLinear& q) {
  VPTQ_RETURN_IF_ERROR(ValidateQuantizedLinear(q));
  try {
    return DequantizeValidated(q);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("dequantize: ", e.what()));
  }
}

torch::Tensor Dequantize(const QuantizedLinear& q) {
  absl::StatusOr<torch::Tensor> w = DequantizeChecked(q);
  return w.ok() ? *std::move(w) : torch::Tensor();
}

}  // namespace vptq::quant
