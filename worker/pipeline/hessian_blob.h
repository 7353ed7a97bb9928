// The REDUCE output: one finalized Hessian (quant::FinalizedHessian) as
// bytes, read by every QUANTIZE task of its input group.
//
// Layout (little-endian): "VPTQHFIN" magic, u32 version (1), u32 reserved
// (0), i64 N, i64 tokens, f64 damp, i64 dead-column count D, D × i64 dead
// columns (ascending), the upper triangle of H row by row (N(N+1)/2 × f64),
// then the SHA-256 of everything before it (32 bytes). The lower triangle is
// mirrored on decode, so H is exactly symmetric.
//
// Decode validates magic, version, sizes, the checksum, dead columns
// (ascending, in range), finite values and a positive diagonal, and returns
// INVALID_ARGUMENT naming `source` otherwise: a corrupt artifact never
// reaches the quantizer.
//
//   std::string bytes = EncodeFinalizedHessian(h, /*damp=*/0.01);
//   VPTQ_ASSIGN_OR_RETURN(DecodedHessian d, DecodeFinalizedHessian(bytes, "hessian"));
//
// Cost: O(N²) both ways, 4·N² bytes. Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "worker/quant/hessian.h"

namespace vptq::pipeline {

struct DecodedHessian {
  quant::FinalizedHessian hessian;  // h on CPU, float64
  double damp = 0;
};

std::string EncodeFinalizedHessian(const quant::FinalizedHessian& h, double damp);

absl::StatusOr<DecodedHessian> DecodeFinalizedHessian(std::string_view bytes,
                                                      std::string_view source);

}  // namespace vptq::pipeline
