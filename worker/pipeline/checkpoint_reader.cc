#include "worker/pipeline/checkpoint_reader.h"

#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/status.h"
#include "worker/pipeline/checkpoint_dir.h"
#include "worker/quant/tensor_io.h"

namespace vptq::pipeline {
namespace {

namespace fs = std::filesystem;

constexpr char kSingle[] = "model.safetensors";
constexpr char kIndex[] = "model.safetensors.index.json";

// The safetensors files a checkpoint consists of, given a way to read the
// index.
absl::StatusOr<std::vector<std::string>> WeightFiles(
    const std::string& source, bool has_single, bool has_index,
    const std::function<absl::StatusOr<std::string>(const std::string&)>& read) {
  if (has_single) return std::vector<std::string>{kSingle};
  if (!has_index) {
    return absl::NotFoundError(
        absl::StrCat(source, " has neither ", kSingle, " nor ", kIndex));
  }
  VPTQ_ASSIGN_OR_RETURN(std::string text, read(kIndex));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") ||
      !j["weight_map"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, "/", kIndex, " is not an index with a weight_map object"));
  }
  std::set<std::string> files;
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    if (!file.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, "/", kIndex, ": weight_map[", tensor, "] is not a file name"));
    }
    VPTQ_RETURN_IF_ERROR(Annotate(CheckCheckpointFileName(file.get<std::string>()), source, "/",
                                  kIndex));
    files.insert(file.get<std::string>());
  }
  return std::vector<std::string>(files.begin(), files.end());
}

// "model.layers.<n>.<suffix>" -> (n, kind); lm_head -> layer -1.
std::optional<std::pair<int64_t, LinearKind>> ParseLinearName(const std::string& name) {
  const std::string prefix = "model.layers.";
  if (!absl::StartsWith(name, prefix)) return std::nullopt;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos) return std::nullopt;
  int64_t layer = 0;
  if (!absl::SimpleAtoi(name.substr(prefix.size(), dot - prefix.size()), &layer)) {
    return std::nullopt;
  }
  const std::string_view suffix = std::string_view(name).substr(dot + 1);
  for (LinearKind k : kAllLinearKinds) {
    if (LinearSuffix(k) == suffix) return std::make_pair(layer, k);
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CheckpointReader>> CheckpointReader::OpenDir(
    const std::string& dir) {
  std::unique_ptr<CheckpointReader> r(new CheckpointReader());
  r->source_ = dir;
  VPTQ_ASSIGN_OR_RETURN(std::string config_text,
                        ReadFile((fs::path(dir) / "config.json").string()));
  std::error_code ec;
  const bool single = fs::exists(fs::path(dir) / kSingle, ec);
  const bool index = fs::exists(fs::path(dir) / kIndex, ec);
  VPTQ_ASSIGN_OR_RETURN(std::vector<std::string> names,
                        WeightFiles(dir, single, index, [&](const std::string& n) {
                          return ReadFile((fs::path(dir) / n).string());
                        }));
  for (const std::string& n : names) {
    VPTQ_ASSIGN_OR_RETURN(r->files_[n], SafetensorsFile::Open((fs::path(dir) / n).string()));
  }
  VPTQ_RETURN_IF_ERROR(r->Init(dir, config_text));
  return r;
}

absl::StatusOr<std::unique_ptr<CheckpointReader>> CheckpointReader::FromFiles(BlobMap files) {
  std::unique_ptr<CheckpointReader> r(new CheckpointReader());
  r->source_ = "<checkpoint artifacts>";
  for (auto& [name, bytes] : files) {
    std::string plain = name;
    if (absl::StartsWith(plain, std::string(kCheckpointPrefix))) {
      plain = plain.substr(kCheckpointPrefix.size());
    }
    r->owned_[plain] = std::move(bytes);
  }
  auto read = [&](const std::string& n) -> absl::StatusOr<std::string> {
    auto it = r->owned_.find(n);
    if (it == r->owned_.end()) {
      return absl::NotFoundError(absl::StrCat("checkpoint file ", n, " is missing"));
    }
    return it->second;
  };
  VPTQ_ASSIGN_OR_RETURN(std::string config_text, read("config.json"));
  VPTQ_ASSIGN_OR_RETURN(std::vector<std::string> names,
                        WeightFiles(r->source_, r->owned_.count(kSingle) > 0,
                                    r->owned_.count(kIndex) > 0, read));
  for (const std::string& n : names) {
    auto it = r->owned_.find(n);
    if (it == r->owned_.end()) {
      return absl::NotFoundError(absl::StrCat("checkpoint file ", n, " is missing"));
    }
    const std::string& b = it->second;
    VPTQ_ASSIGN_OR_RETURN(
        r->files_[n],
        SafetensorsFile::FromBuffer(
            absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(b.data()), b.size()), n));
  }
  VPTQ_RETURN_IF_ERROR(r->Init(r->source_, config_text));
  return r;
}

absl::Status CheckpointReader::Init(const std::string& source, const std::string& config_text) {
  for (const auto& [file, st] : files_) {
    for (const TensorView& t : st->tensors()) {
      if (!tensors_.emplace(t.name, &t).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": tensor ", t.name, " is stored twice (", file, ")"));
      }
    }
  }
  VPTQ_ASSIGN_OR_RETURN(config_, ParseHfConfig(config_text, source + "/config.json"));
  if (!IsSupportedArchitecture(config_.architecture)) {
    return absl::FailedPreconditionError(absl::StrCat(
        source, "/config.json: architecture ", config_.architecture, " is not supported"));
  }
  const nlohmann::json j = nlohmann::json::parse(config_text, nullptr, false);
  if (!j.contains("quantization_config")) return absl::OkStatus();  // a dense model
  const nlohmann::json& qc = j["quantization_config"];
  if (!qc.is_object() || qc.value("quant_method", std::string()) != "vptq") {
    return absl::FailedPreconditionError(absl::StrCat(
        source, "/config.json: quantization_config is not {\"quant_method\": \"vptq\", ...}"));
  }
  if (!qc.contains("config_for_layers") || !qc["config_for_layers"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, "/config.json: quantization_config.config_for_layers is missing"));
  }
  for (const auto& [name, entry] : qc["config_for_layers"].items()) {
    absl::StatusOr<quant::QuantLayout> l = quant::LayoutFromConfig(entry);
    if (!l.ok()) return Annotate(l.status(), source, "/config.json config_for_layers[", name, "]");
    int64_t m = 0, n = 0;
    bool bias = false;
    if (name == "lm_head") {
      m = config_.vocab_size;
      n = config_.hidden_size;
    } else {
      auto parsed = ParseLinearName(name);
      if (!parsed || parsed->first < 0 || parsed->first >= config_.num_hidden_layers) {
        return absl::InvalidArgumentError(absl::StrCat(
            source, "/config.json: config_for_layers names ", name,
            ", which is not a decoder linear of this ", config_.num_hidden_layers,
            "-layer model"));
      }
      std::tie(m, n) = LinearShape(config_, parsed->second);
      bias = LinearHasBias(config_, parsed->second);
    }
    if (l->out_features != m || l->in_features != n || l->has_bias != bias) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, "/config.json: config_for_layers[", name, "] is ", l->out_features, "x",
          l->in_features, l->has_bias ? " with bias" : "", " but the model config makes it ", m,
          "x", n, bias ? " with bias" : "", " (shape/config mismatch)"));
    }
    quantized_[name] = *l;
  }
  if (!quantized_.empty()) {
    const TensorView* c = Find(quantized_.begin()->first + ".centroids.weight");
    if (c != nullptr) element_bits_ = 8 * static_cast<int>(DTypeSize(c->dtype));
  }
  return absl::OkStatus();
}

const TensorView* CheckpointReader::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

absl::StatusOr<torch::Tensor> CheckpointReader::LoadTensor(const std::string& name,
                                                           const std::vector<int64_t>& shape,
                                                           torch::ScalarType dtype) const {
  const TensorView* v = Find(name);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat("tensor ", name, " is missing from ", source_));
  }
  if (v->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor ", name, " in ", source_, " has shape [", absl::StrJoin(v->shape, ", "),
        "], the config implies [", absl::StrJoin(shape, ", "), "]"));
  }
  if (v->dtype != DType::kF32 && v->dtype != DType::kF16 && v->dtype != DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", name, " in ", source_, " is ",
                                                   std::string(DTypeName(v->dtype)), ", expected a float"));
  }
  return quant::ToTensor(*v, dtype);
}

absl::StatusOr<LinearWeights> CheckpointReader::LoadLinear(const std::string& name, int64_t m,
                                                           int64_t n, bool with_bias) const {
  LinearWeights out;
  auto q = quantized_.find(name);
  if (q == quantized_.end()) {
    VPTQ_ASSIGN_OR_RETURN(out.weight, LoadTensor(name + ".weight", {m, n}));
    if (with_bias) {
      VPTQ_ASSIGN_OR_RETURN(out.bias, LoadTensor(name + ".bias", {m}));
    }
    return out;
  }
  const std::string prefix = name + ".";
  std::map<std::string, torch::Tensor> packed;
  for (auto it = tensors_.lower_bound(prefix);
       it != tensors_.end() && absl::StartsWith(it->first, prefix); ++it) {
    VPTQ_ASSIGN_OR_RETURN(packed[it->first.substr(prefix.size())], quant::ToTensor(*it->second));
  }
  absl::StatusOr<quant::QuantizedLinear> unpacked = quant::Unpack(packed, q->second);
  if (!unpacked.ok()) return Annotate(unpacked.status(), source_, ": ", name);
  absl::StatusOr<torch::Tensor> w = quant::DequantizeChecked(*unpacked);
  if (!w.ok()) return Annotate(w.status(), source_, ": ", name);
  out.weight = *std::move(w);
  if (with_bias) {
    if (!unpacked->bias.defined()) {
      return absl::NotFoundError(absl::StrCat(name, ".bias is missing from ", source_));
    }
    out.bias = unpacked->bias.to(torch::kFloat);
  }
  return out;
}

int64_t CheckpointReader::tensor_bytes() const {
  int64_t total = 0;
  for (const auto& [name, v] : tensors_) total += static_cast<int64_t>(v->data.size());
  return total;
}

int64_t CheckpointReader::LinearBytes(const std::string& linear) const {
  int64_t total = 0;
  if (quantized_.count(linear) == 0) {
    const TensorView* v = Find(linear + ".weight");
    return v ? static_cast<int64_t>(v->data.size()) : 0;
  }
  const std::string prefix = linear + ".";
  for (auto it = tensors_.lower_bound(prefix);
       it != tensors_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (it->first != linear + ".bias") total += static_cast<int64_t>(it->second->data.size());
  }
  return total;
}

}  // namespace vptq::pipeline
