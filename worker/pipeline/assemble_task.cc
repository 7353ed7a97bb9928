#include "worker/pipeline/assemble_task.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "common/hf_config.h"
#include "common/safetensors.h"
#include "common/status.h"
#include "worker/pipeline/quant_settings.h"
#include "worker/pipeline/quantized_blob.h"
#include "worker/quant/tensor_io.h"

namespace vptq::pipeline {
namespace {

namespace fs = std::filesystem;

// One tensor of the output: bytes either borrowed (a mapped model file, an
// artifact) or owned (converted).
struct OutTensor {
  DType dtype;
  std::vector<int64_t> shape;
  absl::Span<const uint8_t> bytes;
  std::shared_ptr<std::string> owned;
};

std::string TorchDTypeConfigName(torch::ScalarType t) {
  switch (t) {
    case torch::kHalf: return "float16";
    case torch::kBFloat16: return "bfloat16";
    default: return "float32";
  }
}

bool IsFloat(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }

absl::StatusOr<OutTensor> Converted(const TensorView& view, torch::ScalarType dtype) {
  VPTQ_ASSIGN_OR_RETURN(torch::Tensor t, quant::ToTensor(view, dtype));
  VPTQ_ASSIGN_OR_RETURN(DType d, quant::FromTorchDType(dtype));
  OutTensor out{d, view.shape, {}, std::make_shared<std::string>()};
  t = t.contiguous();
  out.owned->assign(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  out.bytes = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(out.owned->data()),
                                  out.owned->size());
  return out;
}

}  // namespace

bool ModelOrderLess(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) &&
        std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      std::string_view da(a.data() + i, ie - i), db(b.data() + j, je - j);
      while (da.size() > 1 && da[0] == '0') da.remove_prefix(1);
      while (db.size() > 1 && db[0] == '0') db.remove_prefix(1);
      if (da.size() != db.size()) return da.size() < db.size();
      if (da != db) return da < db;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  if ((a.size() - i) != (b.size() - j)) return (a.size() - i) < (b.size() - j);
  return a < b;
}

std::map<std::string, double> AssembleTaskOutput::Metrics() const {
  return {{"bits_per_weight", stats.bpw_file},
          {"bits_per_weight_linears", stats.bpw_linears},
          {"mean_proxy_loss", stats.mean_proxy_loss},
          {"max_proxy_loss", stats.max_proxy_loss}};
}

absl::StatusOr<AssembleTaskOutput> RunAssembleTask(const AssembleTaskInput& input) {
  if (input.options.max_shard_bytes < 1) {
    return absl::InvalidArgumentError("max_shard_bytes must be positive");
  }
  VPTQ_ASSIGN_OR_RETURN(ModelLayout model, ReadModelLayout(input.model_dir));
  QuantSettings dtype_settings;
  dtype_settings.output_dtype = input.options.output_dtype;
  VPTQ_ASSIGN_OR_RETURN(torch::ScalarType out_dtype,
                        ResolveOutputDType(dtype_settings, model.dtype));
  VPTQ_ASSIGN_OR_RETURN(DType out_dtype_st, quant::FromTorchDType(out_dtype));
  const bool convert = !input.options.output_dtype.empty();

  // The artifacts, checked against the model.
  std::map<std::string, ParsedQuantizedBlob> blobs;
  for (const auto& [name, bytes] : input.quantized) {
    VPTQ_ASSIGN_OR_RETURN(ParsedQuantizedBlob b, ParseQuantizedBlob(bytes, name));
    if (b.linear != name) {
      return absl::InvalidArgumentError(
          absl::StrCat("the artifact given for ", name, " holds ", b.linear));
    }
    const LinearSpec* spec = model.FindLinear(name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " is not a decoder linear of ", input.model_dir));
    }
    if (b.layout.out_features != spec->out_features ||
        b.layout.in_features != spec->in_features || b.layout.has_bias != spec->has_bias) {
      return absl::InvalidArgumentError(absl::StrCat(
          "quantized ", name, " is ", b.layout.out_features, "x", b.layout.in_features,
          b.layout.has_bias ? " with" : " without", " bias, but the model's config.json makes it ",
          spec->out_features, "x", spec->in_features, spec->has_bias ? " with" : " without",
          " bias; it was quantized from another model"));
    }
    for (const TensorView& t : b.file->tensors()) {
      if (IsFloat(t.dtype) && t.dtype != out_dtype_st) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor ", t.name, " is ", std::string(DTypeName(t.dtype)), " but the checkpoint's dtype is ",
            std::string(DTypeName(out_dtype_st)), "; quantize every linear with the same output_dtype"));
      }
    }
    VPTQ_RETURN_IF_ERROR(ValidateQuantizedBlob(b));
    blobs.emplace(name, std::move(b));
  }

  // Every tensor of the original model, except what the packed ones replace.
  std::map<std::string, std::unique_ptr<SafetensorsFile>> shard_files;
  for (const std::string& f : model.weights.files) {
    VPTQ_ASSIGN_OR_RETURN(shard_files[f],
                          SafetensorsFile::Open((fs::path(input.model_dir) / f).string()));
  }
  std::map<std::string, OutTensor> tensors;
  CheckpointStats stats;
  double linear_bits = 0, linear_stored_bits = 0;
  for (const auto& [name, info] : model.weights.tensors) {
    stats.model_params += info.numel();
    const TensorView* view = shard_files.at(info.file)->Find(name);
    if (view == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", name, " vanished from ", info.file, " while assembling"));
    }
    bool replaced = false;
    for (const char* suffix : {".weight", ".bias"}) {
      const std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
          blobs.count(name.substr(0, name.size() - s.size())) > 0) {
        replaced = true;
      }
    }
    if (replaced) continue;
    if (convert && IsFloat(view->dtype) && view->dtype != out_dtype_st) {
      VPTQ_ASSIGN_OR_RETURN(tensors[name], Converted(*view, out_dtype));
    } else {
      tensors[name] = OutTensor{view->dtype, view->shape, view->data, nullptr};
    }
  }
  std::vector<std::string> not_converted;
  for (const LinearSpec& l : model.linears) {
    const double mn = static_cast<double>(l.out_features) * static_cast<double>(l.in_features);
    stats.linear_params += l.out_features * l.in_features;
    auto it = blobs.find(l.name);
    if (it == blobs.end()) {
      const OutTensor& w = tensors.at(l.name + ".weight");
      linear_bits += mn * 8.0 * static_cast<double>(DTypeSize(w.dtype));
      linear_stored_bits += 8.0 * static_cast<double>(w.bytes.size());
      ++stats.dense_linears;
      not_converted.push_back(l.name);
      continue;
    }
    const ParsedQuantizedBlob& b = it->second;
    const int element_bits = 8 * static_cast<int>(DTypeSize(out_dtype_st));
    linear_bits += mn * b.layout.BitsPerWeight(element_bits);
    for (const TensorView& t : b.file->tensors()) {
      if (t.name != l.name + ".bias") linear_stored_bits += 8.0 * static_cast<double>(t.data.size());
      tensors[t.name] = OutTensor{t.dtype, t.shape, t.data, nullptr};
    }
    ++stats.quantized_linears;
    stats.mean_proxy_loss += b.stats.proxy_loss;
    stats.max_proxy_loss = std::max(stats.max_proxy_loss, b.stats.proxy_loss);
  }
  if (stats.quantized_linears > 0) stats.mean_proxy_loss /= stats.quantized_linears;
  stats.bpw_linears = linear_bits / static_cast<double>(stats.linear_params);
  stats.bpw_linears_stored = linear_stored_bits / static_cast<double>(stats.linear_params);

  // Shards, filled in model order.
  std::vector<std::string> order;
  for (const auto& [name, t] : tensors) {
    order.push_back(name);
    stats.tensor_bytes += static_cast<int64_t>(t.bytes.size());
  }
  stats.bpw_file = 8.0 * static_cast<double>(stats.tensor_bytes) /
                   static_cast<double>(std::max<int64_t>(1, stats.model_params));
  std::sort(order.begin(), order.end(), ModelOrderLess);
  std::vector<std::vector<std::string>> shards(1);
  int64_t filled = 0;
  for (const std::string& name : order) {
    const int64_t size = static_cast<int64_t>(tensors.at(name).bytes.size());
    if (filled > 0 && filled + size > input.options.max_shard_bytes) {
      shards.emplace_back();
      filled = 0;
    }
    shards.back().push_back(name);
    filled += size;
  }
  AssembleTaskOutput out;
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string file =
        shards.size() == 1
            ? std::string("model.safetensors")
            : absl::StrFormat("model-%05d-of-%05d.safetensors", s + 1, shards.size());
    SafetensorsWriter w;
    w.SetMetadata("format", "pt");
    for (const std::string& name : shards[s]) {
      const OutTensor& t = tensors.at(name);
      VPTQ_RETURN_IF_ERROR(w.Add(name, t.dtype, t.shape, t.bytes));
    }
    out.files[file] = w.Serialize();
  }
  if (shards.size() > 1) {
    std::vector<std::string> names = order;
    std::sort(names.begin(), names.end());
    std::map<std::string, size_t> shard_of;
    for (size_t s = 0; s < shards.size(); ++s) {
      for (const std::string& n : shards[s]) shard_of[n] = s;
    }
    for (const std::string& n : names) {
      weight_map[n] = absl::StrFormat("model-%05d-of-%05d.safetensors", shard_of[n] + 1,
                                      shards.size());
    }
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", stats.tensor_bytes}};
    index["weight_map"] = weight_map;
    out.files["model.safetensors.index.json"] = index.dump(2) + "\n";
  }

  // config.json: the original plus quantization_config.
  const std::string config_path = (fs::path(input.model_dir) / "config.json").string();
  VPTQ_ASSIGN_OR_RETURN(std::string config_text, ReadFile(config_path));
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(config_text, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, " is not a JSON object"));
  }
  if (config.contains("quantization_config")) {
    return absl::FailedPreconditionError(absl::StrCat(
        config_path, " already has a quantization_config; quantize the full-precision model"));
  }
  nlohmann::ordered_json layers = nlohmann::ordered_json::object();
  for (const LinearSpec& l : model.linears) {
    auto it = blobs.find(l.name);
    if (it != blobs.end()) layers[l.name] = it->second.layout_config;
  }
  nlohmann::ordered_json qc;
  qc["quant_method"] = "vptq";
  qc["config_for_layers"] = layers;
  qc["shared_layer_config"] = nlohmann::ordered_json::object();
  nlohmann::ordered_json skip = nlohmann::ordered_json::array();
  skip.push_back("lm_head");
  for (const std::string& n : not_converted) skip.push_back(n);
  qc["modules_to_not_convert"] = skip;
  if (convert) config["torch_dtype"] = TorchDTypeConfigName(out_dtype);
  config["quantization_config"] = qc;
  out.files["config.json"] = config.dump(2) + "\n";

  for (const char* name : kCopiedModelFiles) {
    const fs::path p = fs::path(input.model_dir) / name;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) continue;
    VPTQ_ASSIGN_OR_RETURN(out.files[name], ReadFile(p.string()));
  }
  out.stats = stats;
  return out;
}

}  // namespace vptq::pipeline
