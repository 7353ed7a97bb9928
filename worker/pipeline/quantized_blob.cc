#include "worker/pipeline/quantized_blob.h"

#include <exception>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/quant/tensor_io.h"

namespace vptq::pipeline {

nlohmann::ordered_json StatsToJson(const LinearQuantStats& s) {
  nlohmann::ordered_json j;
  j["linear"] = s.linear;
  j["out_features"] = s.out_features;
  j["in_features"] = s.in_features;
  j["vector_len"] = s.vector_len;
  j["num_centroids"] = s.num_centroids;
  j["num_res_centroids"] = s.num_res_centroids;
  j["group_num"] = s.group_num;
  j["outlier_size"] = s.outlier_size;
  j["storage_dtype"] = s.storage_dtype;
  j["proxy_loss"] = s.proxy_loss;
  j["proxy_loss_before_refine"] = s.proxy_loss_before_refine;
  j["bits_per_weight"] = s.bits_per_weight;
  j["stored_bits_per_weight"] = s.stored_bits_per_weight;
  j["seconds"] = {{"perm", s.seconds.perm},         {"norm", s.seconds.norm},
                  {"kmeans", s.seconds.kmeans},     {"pass", s.seconds.pass},
                  {"residual", s.seconds.residual}, {"refine", s.seconds.refine},
                  {"total", s.seconds.total},       {"task", s.task_seconds}};
  j["kmeans_iterations"] = s.kmeans_iterations;
  j["damping_added"] = s.damping_added;
  j["hessian_tokens"] = s.hessian_tokens;
  j["dead_columns"] = s.dead_columns;
  return j;
}

absl::StatusOr<LinearQuantStats> StatsFromJson(const nlohmann::json& j) {
  try {
    LinearQuantStats s;
    s.linear = j.at("linear").get<std::string>();
    s.out_features = j.at("out_features").get<int64_t>();
    s.in_features = j.at("in_features").get<int64_t>();
    s.vector_len = j.at("vector_len").get<int64_t>();
    s.num_centroids = j.at("num_centroids").get<int64_t>();
    s.num_res_centroids = j.at("num_res_centroids").get<int64_t>();
    s.group_num = j.at("group_num").get<int64_t>();
    s.outlier_size = j.at("outlier_size").get<int64_t>();
    s.storage_dtype = j.at("storage_dtype").get<std::string>();
    s.proxy_loss = j.at("proxy_loss").get<double>();
    s.proxy_loss_before_refine = j.at("proxy_loss_before_refine").get<double>();
    s.bits_per_weight = j.at("bits_per_weight").get<double>();
    s.stored_bits_per_weight = j.at("stored_bits_per_weight").get<double>();
    const nlohmann::json& sec = j.at("seconds");
    s.seconds.perm = sec.at("perm").get<double>();
    s.seconds.norm = sec.at("norm").get<double>();
    s.seconds.kmeans = sec.at("kmeans").get<double>();
    s.seconds.pass = sec.at("pass").get<double>();
    s.seconds.residual = sec.at("residual").get<double>();
    s.seconds.refine = sec.at("refine").get<double>();
    s.seconds.total = sec.at("total").get<double>();
    s.task_seconds = sec.at("task").get<double>();
    s.kmeans_iterations = j.at("kmeans_iterations").get<int>();
    s.damping_added = j.at("damping_added").get<double>();
    s.hessian_tokens = j.at("hessian_tokens").get<int64_t>();
    s.dead_columns = j.at("dead_columns").get<int64_t>();
    return s;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("quantization stats: ", e.what()));
  }
}

absl::StatusOr<std::string> EncodeQuantizedBlob(const std::string& linear,
                                                const quant::QuantLayout& layout,
                                                const std::map<std::string, torch::Tensor>& packed,
                                                const LinearQuantStats& stats) {
  SafetensorsWriter w;
  for (const auto& [suffix, t] : packed) {
    VPTQ_RETURN_IF_ERROR(quant::AddTensor(w, absl::StrCat(linear, ".", suffix), t));
  }
  w.SetMetadata("vptq.format", kQuantizedBlobFormat);
  w.SetMetadata("vptq.linear", linear);
  w.SetMetadata("vptq.layout", quant::LayoutToConfig(layout).dump());
  w.SetMetadata("vptq.stats", StatsToJson(stats).dump());
  return w.Serialize();
}

absl::StatusOr<std::map<std::string, torch::Tensor>> ParsedQuantizedBlob::PackedTensors() const {
  return quant::ReadTensors(*file, linear + ".");
}

absl::StatusOr<ParsedQuantizedBlob> ParseQuantizedBlob(std::string_view bytes,
                                                       std::string_view source_view) {
  const std::string source(source_view);
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantized artifact for ", source, " is not valid: ", why));
  };
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::FromBuffer(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      std::string(source));
  if (!file.ok()) return bad(std::string(file.status().message()));
  const auto& meta = (*file)->metadata();
  auto get = [&](const char* key) -> const std::string* {
    auto it = meta.find(key);
    return it == meta.end() ? nullptr : &it->second;
  };
  const std::string* format = get("vptq.format");
  if (format == nullptr || *format != kQuantizedBlobFormat) {
    return bad(absl::StrCat("metadata vptq.format is ", format ? *format : "missing",
                            ", expected ", kQuantizedBlobFormat));
  }
  const std::string* linear = get("vptq.linear");
  const std::string* layout = get("vptq.layout");
  const std::string* stats = get("vptq.stats");
  if (linear == nullptr || layout == nullptr || stats == nullptr) {
    return bad("metadata vptq.linear, vptq.layout and vptq.stats are required");
  }
  ParsedQuantizedBlob out;
  out.linear = *linear;
  out.layout_config = nlohmann::ordered_json::parse(*layout, nullptr, false);
  if (out.layout_config.is_discarded()) return bad("vptq.layout is not JSON");
  absl::StatusOr<quant::QuantLayout> l = quant::LayoutFromConfig(out.layout_config);
  if (!l.ok()) return bad(std::string(l.status().message()));
  out.layout = *l;
  const nlohmann::json sj = nlohmann::json::parse(*stats, nullptr, false);
  if (sj.is_discarded()) return bad("vptq.stats is not JSON");
  absl::StatusOr<LinearQuantStats> st = StatsFromJson(sj);
  if (!st.ok()) return bad(std::string(st.status().message()));
  out.stats = *st;
  const std::string prefix = out.linear + ".";
  for (const TensorView& t : (*file)->tensors()) {
    if (!absl::StartsWith(t.name, prefix)) {
      return bad(absl::StrCat("tensor ", t.name, " is not under ", prefix));
    }
  }
  out.file = *std::move(file);
  return out;
}

absl::Status ValidateQuantizedBlob(const ParsedQuantizedBlob& blob) {
  VPTQ_ASSIGN_OR_RETURN(auto packed, blob.PackedTensors());
  absl::StatusOr<quant::QuantizedLinear> q = quant::Unpack(packed, blob.layout);
  if (!q.ok()) return Annotate(q.status(), "quantized ", blob.linear);
  return absl::OkStatus();
}

}  // namespace vptq::pipeline
