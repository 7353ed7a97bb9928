#include "coordinator/spec_validation.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace vptq::coordinator {
namespace {

bool IsPowerOfTwo(int64_t x) { return x > 0 && (x & (x - 1)) == 0; }
int Log2(int64_t x) {
  int b = 0;
  while ((int64_t{1} << b) < x) ++b;
  return b;
}

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("spec field '", field, "' ", why));
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_' || c == '.';
}

std::string Basename(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
}

absl::Status CheckQuant(v1::QuantOptions* q, std::vector<std::string>* warnings) {
  if (q->bits() != 0 && (q->bits() < 2 || q->bits() > 4)) {
    return Invalid("quant.bits", "must be 2, 3 or 4 (or 0 for explicit values only)");
  }
  // Explicit fields: 0 = default (the bits budget's choice, or the engine's).
  if (q->vector_len() != 0 && (q->vector_len() < 1 || q->vector_len() > 32)) {
    return Invalid("quant.vector_len", "must be in [1, 32]");
  }
  if (q->num_centroids() != 0 &&
      (!IsPowerOfTwo(q->num_centroids()) || q->num_centroids() < 2 ||
       q->num_centroids() > 65536)) {
    return Invalid("quant.num_centroids", "must be a power of two in [2, 65536]");
  }
  if (q->num_res_centroids() != 0 &&
      (!IsPowerOfTwo(q->num_res_centroids()) || q->num_res_centroids() > 65536)) {
    return Invalid("quant.num_res_centroids", "must be 0 or a power of two <= 65536");
  }
  if (q->group_num() < 0 || q->group_num() > 4096) {
    return Invalid("quant.group_num", "must be in [1, 4096] (0 = 1)");
  }
  if (!(q->outlier_fraction() >= 0 && q->outlier_fraction() < 0.5)) {
    return Invalid("quant.outlier_fraction", "must be in [0, 0.5)");
  }
  if (q->outlier_vector_len() != 0 && (q->outlier_vector_len() < 2 || q->outlier_vector_len() > 32)) {
    return Invalid("quant.outlier_vector_len", "must be in [2, 32]");
  }
  if (q->outlier_num_centroids() != 0 &&
      (!IsPowerOfTwo(q->outlier_num_centroids()) || q->outlier_num_centroids() > 65536)) {
    return Invalid("quant.outlier_num_centroids", "must be a power of two <= 65536");
  }
  if (q->outlier_fraction() == 0 && (q->outlier_vector_len() != 0 || q->outlier_num_centroids() != 0)) {
    return Invalid("quant.outlier_vector_len",
                   "and outlier_num_centroids only apply with outlier_fraction > 0");
  }
  // The stock CUDA kernels' envelope (DESIGN.md §3), for what the spec pins
  // down itself (a bits budget alone is resolved inside the envelope).
  const bool pinned = q->vector_len() != 0 || q->num_centroids() != 0 ||
                      q->num_res_centroids() != 0 || q->group_num() > 1;
  if (q->bits() == 0 || pinned) {
    const int64_t v = q->vector_len() != 0 ? q->vector_len() : 6;
    const int64_t k = q->num_centroids() != 0 ? q->num_centroids() : 4096;
    const int b = Log2(k);
    const int br = q->num_res_centroids() ? Log2(q->num_res_centroids()) : 0;
    const std::vector<int> index_bits = {4, 8, 10, 12, 13, 14, 15, 16};
    const std::vector<int> vlens = {2, 4, 6, 8, 10, 12, 16};
    if (q->num_centroids() != 0 &&
        std::find(index_bits.begin(), index_bits.end(), b) == index_bits.end()) {
      warnings->push_back(absl::StrCat("index bits ", b,
                                       " are outside the stock CUDA kernels' {4,8,10,12-16}"));
    }
    if (br == 1 || (br > 12 && br < 15)) {
      warnings->push_back(absl::StrCat("residual index bits ", br,
                                       " are outside the stock CUDA kernels' {0,2-12,15,16}"));
    }
    if (q->vector_len() != 0 && std::find(vlens.begin(), vlens.end(), v) == vlens.end()) {
      warnings->push_back(absl::StrCat("vector_len ", v,
                                       " is outside the stock CUDA kernels' {2,4,...,12,16}"));
    }
    if (q->group_num() > 1 && k != q->num_res_centroids()) {
      warnings->push_back(
          "group_num > 1 needs num_centroids == num_res_centroids in the stock CUDA kernels");
    }
  }
  if (!q->has_enable_perm()) q->set_enable_perm(true);
  if (!q->has_enable_norm()) q->set_enable_norm(false);
  if (q->kmeans_iters() < 0 || q->kmeans_iters() > 10000) {
    return Invalid("quant.kmeans_iters", "must be in [0, 10000] (0 = engine default)");
  }
  if (q->refine_iters() < 0 || q->refine_iters() > 1000) {
    return Invalid("quant.refine_iters", "must be in [0, 1000]");
  }
  if (q->damp() == 0) q->set_damp(0.01);
  if (!(q->damp() > 0 && q->damp() <= 10)) return Invalid("quant.damp", "must be in (0, 10]");
  if (q->block_size() == 0) q->set_block_size(128);
  if (q->block_size() < 1 || q->block_size() > 65536) {
    return Invalid("quant.block_size", "must be in [1, 65536]");
  }
  static const std::vector<std::string> kDtypes = {"",        "fp16",     "bf16",   "fp32",
                                                   "float16", "bfloat16", "float32"};
  if (std::find(kDtypes.begin(), kDtypes.end(), q->output_dtype()) == kDtypes.end()) {
    return Invalid("quant.output_dtype",
                   "must be \"fp16\", \"bf16\", \"fp32\" or empty (the model's dtype)");
  }
  return absl::OkStatus();
}

absl::Status ResolveAll(google::protobuf::RepeatedPtrField<std::string>* paths,
                        absl::string_view field, const PathPolicy& policy) {
  for (std::string& p : *paths) {
    auto r = policy.ResolveInput(p);
    if (!r.ok()) return Annotate(r.status(), "spec field '", field, "'");
    p = *r;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status NormalizeJobSpec(v1::JobSpec* spec, std::vector<std::string>* warnings) {
  if (spec->model().path().empty()) {
    return Invalid("model.path", "is required: the HF model directory to quantize");
  }
  if (spec->name().empty()) spec->set_name(Basename(spec->model().path()) + "-vptq");
  if (spec->name().size() > 128 ||
      !std::all_of(spec->name().begin(), spec->name().end(), IsNameChar)) {
    return Invalid("name", "must be 1-128 characters of [A-Za-z0-9._-]");
  }
  v1::CalibrationSpec* cal = spec->mutable_calibration();
  if (cal->text_paths().empty()) {
    return Invalid("calibration.text_paths", "needs at least one text file or directory");
  }
  if (cal->num_sequences() == 0) cal->set_num_sequences(kDefaultNumSequences);
  if (cal->num_sequences() < 1 || cal->num_sequences() > 1'000'000) {
    return Invalid("calibration.num_sequences", "must be in [1, 1000000]");
  }
  if (cal->sequence_length() == 0) cal->set_sequence_length(kDefaultSequenceLength);
  if (cal->sequence_length() < 2 || cal->sequence_length() > (1 << 20)) {
    return Invalid("calibration.sequence_length", "must be in [2, 1048576]");
  }
  if (cal->num_shards() == 0) {
    cal->set_num_shards(std::clamp((cal->num_sequences() + 15) / 16, 1, kMaxShards));
  }
  if (cal->num_shards() < 1 || cal->num_shards() > std::min(cal->num_sequences(), 4096)) {
    return Invalid("calibration.num_shards",
                   absl::StrCat("must be in [1, min(num_sequences, 4096)] = [1, ",
                                std::min(cal->num_sequences(), 4096), "]"));
  }
  VPTQ_RETURN_IF_ERROR(CheckQuant(spec->mutable_quant(), warnings));
  if (spec->has_eval()) {
    v1::EvalSpec* ev = spec->mutable_eval();
    if (ev->text_paths().empty()) {
      return Invalid("eval.text_paths", "needs at least one file (or drop the eval block)");
    }
    if (ev->sequence_length() == 0) ev->set_sequence_length(cal->sequence_length());
    if (ev->sequence_length() < 2 || ev->sequence_length() > (1 << 20)) {
      return Invalid("eval.sequence_length", "must be in [2, 1048576]");
    }
    if (ev->max_sequences() == 0) ev->set_max_sequences(kDefaultEvalSequences);
    if (ev->max_sequences() < 1 || ev->max_sequences() > 1'000'000) {
      return Invalid("eval.max_sequences", "must be in [1, 1000000]");
    }
  }
  if (spec->priority() < -1000 || spec->priority() > 1000) {
    return Invalid("priority", "must be in [-1000, 1000]");
  }
  if (!v1::DeviceKind_IsValid(spec->device_kind())) {
    return Invalid("device_kind", "is not a known device kind");
  }
  for (const auto& [k, v] : spec->labels()) {
    if (k.empty() || k.size() > 63 || v.size() > 256) {
      return Invalid("labels", "keys must be 1-63 characters and values at most 256");
    }
  }
  return absl::OkStatus();
}

absl::Status ResolveJobSpecPaths(v1::JobSpec* spec, const PathPolicy& paths) {
  auto model = paths.ResolveInput(spec->model().path());
  if (!model.ok()) return Annotate(model.status(), "spec field 'model.path'");
  spec->mutable_model()->set_path(*model);
  VPTQ_RETURN_IF_ERROR(ResolveAll(spec->mutable_calibration()->mutable_text_paths(),
                                  "calibration.text_paths", paths));
  if (spec->has_eval()) {
    VPTQ_RETURN_IF_ERROR(
        ResolveAll(spec->mutable_eval()->mutable_text_paths(), "eval.text_paths", paths));
  }
  if (!spec->output_dir().empty()) {
    auto out = paths.ResolveOutput(spec->output_dir());
    if (!out.ok()) return Annotate(out.status(), "spec field 'output_dir'");
    spec->set_output_dir(*out);
  }
  return absl::OkStatus();
}

}  // namespace vptq::coordinator
