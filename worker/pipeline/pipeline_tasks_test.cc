// The task runners on a small random model: Hessians against a plain
// reference, quantize -> assemble -> read back, the streamed evaluation
// against full logits, determinism, resumability and bad inputs.
#include <cstring>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/file_util.h"
#include "common/hf_config.h"
#include "worker/model/llama_model.h"
#include "worker/model/model_reader.h"
#include "worker/pipeline/assemble_task.h"
#include "worker/pipeline/checkpoint_dir.h"
#include "worker/pipeline/checkpoint_reader.h"
#include "worker/pipeline/eval_task.h"
#include "worker/pipeline/hessian_blob.h"
#include "worker/pipeline/hessian_task.h"
#include "worker/pipeline/local_runner.h"
#include "worker/pipeline/pipeline_test_util.h"
#include "worker/pipeline/quantize_task.h"
#include "worker/pipeline/reduce_task.h"
#include "worker/quant/tensor_io.h"
#include "worker/quant/vptq_quantizer.h"

namespace vptq::pipeline {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;
using testing::SmallSettings;

// Relative tolerance for sums of fp32 activation products done two ways.
constexpr double kHessianRelTol = 1e-5;
// Streamed evaluation vs. one full forward: same fp32 math, other batching.
constexpr double kEvalRelTol = 1e-4;

class PipelineTasksTest : public testing::SyntheticPipelineTest {
 protected:
  BlobMap Hessians() {
    LocalJobResult r;
    auto h = RunHessianStages(Job(), &r);
    EXPECT_THAT(h, IsOk());
    return h.ok() ? *h : BlobMap{};
  }
};

TEST_F(PipelineTasksTest, HessiansMatchAPlainForwardOverEverySequence) {
  HessianTaskInput in{model_dir(), Calibration(), 0, 1, {}};
  VPTQ_ASSERT_OK_AND_ASSIGN(BlobMap out, RunHessianTask(in));
  ASSERT_EQ(out.size(), 2u * 4u);

  // Reference: the whole forward at once, x xᵀ summed per hook call in fp64.
  VPTQ_ASSERT_OK_AND_ASSIGN(TokenSequences seqs, BuildTokenSequences(model_dir(), Calibration()));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, model::ModelReader::Open(model_dir()));
  std::map<std::string, torch::Tensor> sums;
  model::ForwardOptions fwd;
  fwd.hook = [&](int64_t l, LinearInput input, const torch::Tensor& x) -> absl::Status {
    const torch::Tensor x2 = x.reshape({-1, x.size(-1)}).to(torch::kDouble);
    torch::Tensor& s = sums[LinearInputKey(l, input)];
    s = s.defined() ? s + x2.t().mm(x2) : x2.t().mm(x2);
    return absl::OkStatus();
  };
  const torch::Tensor ids =
      torch::from_blob(seqs.ids.data(), {seqs.count(), seqs.sequence_length}, torch::kInt)
          .to(torch::kLong);
  ASSERT_THAT(model::ForwardLogits(*reader, ids, fwd), IsOk());
  ASSERT_EQ(sums.size(), 8u);
  for (const auto& [group, ref] : sums) {
    VPTQ_ASSERT_OK_AND_ASSIGN(quant::HessianAccumulator acc,
                              quant::HessianAccumulator::Deserialize(
                                  out.at(HessianOutputName(group))));
    EXPECT_EQ(acc.tokens(), 12 * 32) << group;
    const double err = (acc.Sum() - ref).abs().max().item<double>();
    EXPECT_LE(err, kHessianRelTol * ref.abs().max().item<double>()) << group;
  }

  // Two shards reduce to what one shard gives (up to the forward's fp32
  // rounding, which depends on how sequences are batched).
  HessianTaskInput s0{model_dir(), Calibration(), 0, 2, {}};
  HessianTaskInput s1{model_dir(), Calibration(), 1, 2, {}};
  VPTQ_ASSERT_OK_AND_ASSIGN(BlobMap o0, RunHessianTask(s0));
  VPTQ_ASSERT_OK_AND_ASSIGN(BlobMap o1, RunHessianTask(s1));
  const std::string g = "model.layers.1.gate_up";
  VPTQ_ASSERT_OK_AND_ASSIGN(
      std::string two, RunReduceTask({g, {{"shard-00000", o0.at(HessianOutputName(g))},
                                          {"shard-00001", o1.at(HessianOutputName(g))}}}));
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string one,
                            RunReduceTask({g, {{"shard-00000", out.at(HessianOutputName(g))}}}));
  VPTQ_ASSERT_OK_AND_ASSIGN(DecodedHessian h2, DecodeFinalizedHessian(two, g));
  VPTQ_ASSERT_OK_AND_ASSIGN(DecodedHessian h1, DecodeFinalizedHessian(one, g));
  EXPECT_LE((h2.hessian.h - h1.hessian.h).abs().max().item<double>(),
            kHessianRelTol * h1.hessian.h.abs().max().item<double>());
}

TEST_F(PipelineTasksTest, PackedCheckpointHoldsWhatTheQuantizerProduced) {
  const BlobMap hessians = Hessians();
  const std::string linear = "model.layers.1.mlp.down_proj";  // 32 x 48
  QuantizeTaskInput qi{model_dir(), linear, hessians.at("model.layers.1.down"), SmallSettings()};
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantizeTaskOutput q, RunQuantizeTask(qi));
  EXPECT_EQ(q.stats.out_features, 32);
  EXPECT_EQ(q.stats.in_features, 48);
  EXPECT_GT(q.stats.proxy_loss, 0);
  EXPECT_LT(q.stats.proxy_loss, 1);
  EXPECT_EQ(q.stats.storage_dtype, "F32");
  EXPECT_EQ(q.Metrics().at("proxy_loss"), q.stats.proxy_loss);

  // The same quantization in memory, with the options the task resolved.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, model::ModelReader::Open(model_dir()));
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor w, reader->Load(linear + ".weight"));
  VPTQ_ASSERT_OK_AND_ASSIGN(DecodedHessian h,
                            DecodeFinalizedHessian(hessians.at("model.layers.1.down"), "h"));
  VPTQ_ASSERT_OK_AND_ASSIGN(quant::VptqOptions o,
                            ResolveVptqOptions(SmallSettings(), linear, 32, 48, torch::kFloat));
  VPTQ_ASSERT_OK_AND_ASSIGN(quant::VptqResult direct,
                            quant::QuantizeLinear(quant::ZeroDeadColumns(w, h.hessian.dead_columns),
                                                  h.hessian.h, o));

  // Assembled with only this linear quantized, then read back from disk.
  VPTQ_ASSERT_OK_AND_ASSIGN(AssembleTaskOutput a,
                            RunAssembleTask({model_dir(), {{linear, q.blob}}, {}}));
  EXPECT_EQ(a.stats.quantized_linears, 1);
  EXPECT_EQ(a.stats.dense_linears, 13);
  const std::string out = scratch_.Sub("out");
  ASSERT_THAT(WriteCheckpointDir(a.files, out), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto ckpt, CheckpointReader::OpenDir(out));
  VPTQ_ASSERT_OK_AND_ASSIGN(LinearWeights got, ckpt->LoadLinear(linear, 32, 48, false));
  EXPECT_TRUE(torch::equal(got.weight, direct.reconstruction));  // bit for bit
  // Dense tensors are copied unchanged.
  VPTQ_ASSERT_OK_AND_ASSIGN(LinearWeights up, ckpt->LoadLinear("model.layers.1.mlp.up_proj", 48,
                                                                32, false));
  EXPECT_TRUE(torch::equal(up.weight, synthetic_.tensors.at("model.layers.1.mlp.up_proj.weight")));
}

TEST_F(PipelineTasksTest, ConfigAndShardsFollowTheStockFormat) {
  LocalJob job = Job();
  job.eval.reset();
  job.quant.output_dtype = "fp16";
  VPTQ_ASSERT_OK_AND_ASSIGN(LocalJobResult r, RunLocalJob(job));
  const BlobMap& files = r.checkpoint.files;
  ASSERT_TRUE(files.count("model.safetensors"));
  const nlohmann::ordered_json config = nlohmann::ordered_json::parse(files.at("config.json"));
  EXPECT_EQ(config["torch_dtype"], "float16");
  const auto& qc = config["quantization_config"];
  std::vector<std::string> keys;
  for (const auto& [k, v] : qc.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"quant_method", "config_for_layers",
                                            "shared_layer_config", "modules_to_not_convert"}));
  EXPECT_EQ(qc["quant_method"], "vptq");
  EXPECT_EQ(qc["modules_to_not_convert"], nlohmann::json::array({"lm_head"}));
  ASSERT_EQ(qc["config_for_layers"].size(), 14u);

  // Every entry has exactly the golden config's keys, in its order.
  const std::string golden_path = "testdata/vptq_format/plain_12bit/packed/config.json";
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string golden_text, ReadFile(golden_path));
  const auto golden = nlohmann::ordered_json::parse(golden_text)["quantization_config"]
                                                                ["config_for_layers"]
                                                                ["model.layers.0.mlp.down_proj"];
  std::vector<std::string> golden_keys;
  for (const auto& [k, v] : golden.items()) golden_keys.push_back(k);
  for (const auto& [name, entry] : qc["config_for_layers"].items()) {
    std::vector<std::string> entry_keys;
    for (const auto& [k, v] : entry.items()) entry_keys.push_back(k);
    EXPECT_EQ(entry_keys, golden_keys) << name;
  }

  // No dense weight of a quantized linear; everything else is there, fp16.
  VPTQ_ASSERT_OK_AND_ASSIGN(
      auto st, SafetensorsFile::FromBuffer(absl::MakeConstSpan(
                   reinterpret_cast<const uint8_t*>(files.at("model.safetensors").data()),
                   files.at("model.safetensors").size())));
  EXPECT_EQ(st->Find("model.layers.0.self_attn.q_proj.weight"), nullptr);
  ASSERT_NE(st->Find("model.layers.0.self_attn.q_proj.indices"), nullptr);
  ASSERT_NE(st->Find("model.embed_tokens.weight"), nullptr);
  EXPECT_EQ(st->Find("model.embed_tokens.weight")->dtype, DType::kF16);
  EXPECT_EQ(st->Find("model.layers.0.self_attn.q_proj.centroids.weight")->dtype, DType::kF16);
  EXPECT_EQ(st->metadata().at("format"), "pt");

  // A small shard limit: shards + index holding the same tensors.
  AssembleTaskInput ai{model_dir(), r.quantized, {}};
  ai.options.output_dtype = "fp16";
  ai.options.max_shard_bytes = 4000;
  VPTQ_ASSERT_OK_AND_ASSIGN(AssembleTaskOutput sharded, RunAssembleTask(ai));
  ASSERT_TRUE(sharded.files.count("model.safetensors.index.json"));
  EXPECT_FALSE(sharded.files.count("model.safetensors"));
  EXPECT_GT(sharded.files.size(), 4u);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto a, CheckpointReader::FromFiles(files));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto b, CheckpointReader::FromFiles(sharded.files));
  EXPECT_EQ(a->tensor_bytes(), b->tensor_bytes());
  VPTQ_ASSERT_OK_AND_ASSIGN(ModelLayout layout, ReadModelLayout(model_dir()));
  for (const LinearSpec& l : layout.linears) {
    VPTQ_ASSERT_OK_AND_ASSIGN(LinearWeights wa,
                              a->LoadLinear(l.name, l.out_features, l.in_features, false));
    VPTQ_ASSERT_OK_AND_ASSIGN(LinearWeights wb,
                              b->LoadLinear(l.name, l.out_features, l.in_features, false));
    EXPECT_TRUE(torch::equal(wa.weight, wb.weight)) << l.name;
  }
}

TEST_F(PipelineTasksTest, StreamedEvaluationMatchesFullLogits) {
  VPTQ_ASSERT_OK_AND_ASSIGN(auto reader, model::ModelReader::Open(model_dir()));
  // Candidate: every linear perturbed (a stand-in for dequantized weights).
  std::map<std::string, torch::Tensor> perturbed;
  torch::manual_seed(11);
  for (const LinearSpec& l : reader->layout().linears) {
    const torch::Tensor w = synthetic_.tensors.at(l.name + ".weight");
    perturbed[l.name] = w + 0.05 * torch::randn_like(w);
  }
  ReaderEvalModel ref(*reader, nullptr, torch::kCPU);
  ReaderEvalModel cand(*reader, model::OverrideFromMap(perturbed), torch::kCPU);
  TextSetOptions text = Job().eval->text;
  VPTQ_ASSERT_OK_AND_ASSIGN(TokenSequences seqs, BuildTokenSequences(model_dir(), text));
  ComputeOptions compute;
  compute.max_batch = 4;
  // A budget of 3 rows of logits at a time exercises the slicing.
  VPTQ_ASSERT_OK_AND_ASSIGN(QualityReport streamed,
                            CompareModels(ref, cand, seqs, compute, 3 * 64));

  const torch::Tensor ids =
      torch::from_blob(seqs.ids.data(), {seqs.count(), seqs.sequence_length}, torch::kInt)
          .to(torch::kLong);
  model::ForwardOptions fr, fc;
  fc.weight_override = model::OverrideFromMap(perturbed);
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor lr, model::ForwardLogits(*reader, ids, fr));
  VPTQ_ASSERT_OK_AND_ASSIGN(torch::Tensor lc, model::ForwardLogits(*reader, ids, fc));
  const QualityReport plain = ScoreLogitsReference(lr, lc, ids);

  EXPECT_EQ(streamed.tokens, 6 * 31);
  EXPECT_EQ(plain.tokens, streamed.tokens);
  EXPECT_NEAR(streamed.perplexity_original, plain.perplexity_original,
              kEvalRelTol * plain.perplexity_original);
  EXPECT_NEAR(streamed.perplexity, plain.perplexity, kEvalRelTol * plain.perplexity);
  EXPECT_NEAR(streamed.kl_divergence, plain.kl_divergence, kEvalRelTol * plain.kl_divergence);
  EXPECT_NEAR(streamed.top1_agreement, plain.top1_agreement, 1.0 / plain.tokens);
  EXPECT_GT(plain.kl_divergence, 0);

  // A model against itself: no divergence.
  VPTQ_ASSERT_OK_AND_ASSIGN(QualityReport same, CompareModels(ref, ref, seqs, compute));
  EXPECT_LT(same.kl_divergence, 1e-9);
  EXPECT_EQ(same.top1_agreement, 1.0);
  EXPECT_EQ(same.perplexity, same.perplexity_original);
}

TEST_F(PipelineTasksTest, LocalJobIsDeterministicAndEvaluatesThePackedFiles) {
  LocalJob job = Job();
  job.output_dir = scratch_.Sub("out1");
  VPTQ_ASSERT_OK_AND_ASSIGN(LocalJobResult r1, RunLocalJob(job));
  job.output_dir = scratch_.Sub("out2");
  VPTQ_ASSERT_OK_AND_ASSIGN(LocalJobResult r2, RunLocalJob(job));
  ASSERT_EQ(r1.checkpoint.files.size(), r2.checkpoint.files.size());
  for (const auto& [name, bytes] : r1.checkpoint.files) {
    EXPECT_EQ(bytes, r2.checkpoint.files.at(name)) << name;
  }
  VPTQ_ASSERT_OK_AND_ASSIGN(BlobMap on_disk, ReadCheckpointDir(scratch_.Sub("out1")));
  EXPECT_EQ(on_disk, r1.checkpoint.files);

  ASSERT_TRUE(r1.quality.has_value());
  const QualityReport& q = *r1.quality;
  EXPECT_EQ(q.quantized_linears, 14);
  EXPECT_GT(q.kl_divergence, 0);
  EXPECT_GT(q.top1_agreement, 0);
  EXPECT_LE(q.top1_agreement, 1);
  EXPECT_TRUE(std::isfinite(q.perplexity));
  EXPECT_NEAR(q.bpw_linears, r1.checkpoint.stats.bpw_linears, 1e-12);
  EXPECT_NEAR(q.bpw_file, r1.checkpoint.stats.bpw_file, 1e-12);
  EXPECT_LT(q.bpw_linears, 32);

  // The evaluation reads the files: the same figures from the in-memory
  // artifacts, and other figures once a packed tensor is altered.
  EvalTaskInput ei{model_dir(), "", {}, *job.eval};
  for (const auto& [name, bytes] : r1.checkpoint.files) {
    ei.checkpoint_files[CheckpointInputName(name)] = bytes;
  }
  VPTQ_ASSERT_OK_AND_ASSIGN(QualityReport from_blobs, RunEvalTask(ei));
  EXPECT_EQ(from_blobs.kl_divergence, q.kl_divergence);
  std::string& st = ei.checkpoint_files.at("checkpoint/model.safetensors");
  VPTQ_ASSERT_OK_AND_ASSIGN(auto parsed, SafetensorsFile::FromBuffer(absl::MakeConstSpan(
                                             reinterpret_cast<const uint8_t*>(st.data()), st.size())));
  const TensorView* c = parsed->Find("model.layers.0.mlp.up_proj.centroids.weight");
  ASSERT_NE(c, nullptr);
  const size_t offset = static_cast<size_t>(c->data.data() - reinterpret_cast<const uint8_t*>(st.data()));
  parsed.reset();
  float v;
  std::memcpy(&v, st.data() + offset, 4);
  v += 0.5f;
  std::memcpy(st.data() + offset, &v, 4);
  VPTQ_ASSERT_OK_AND_ASSIGN(QualityReport altered, RunEvalTask(ei));
  EXPECT_NE(altered.kl_divergence, q.kl_divergence);
}

TEST_F(PipelineTasksTest, ResumesFromStoredTaskOutputsWithIdenticalBytes) {
  LocalJob job = Job();
  job.eval.reset();
  job.state_dir = scratch_.Sub("state");
  VPTQ_ASSERT_OK_AND_ASSIGN(LocalJobResult first, RunLocalJob(job));
  EXPECT_EQ(first.tasks_reused, 0);
  // As if killed midway: some quantize outputs and a reduce output missing.
  fs::remove_all(job.state_dir + "/quantize%2Fmodel.layers.0.mlp.up_proj");
  fs::remove_all(job.state_dir + "/quantize%2Fmodel.layers.1.self_attn.k_proj");
  fs::remove(job.state_dir + "/reduce%2Fmodel.layers.1.o/_complete");
  VPTQ_ASSERT_OK_AND_ASSIGN(LocalJobResult second, RunLocalJob(job));
  EXPECT_EQ(second.tasks_run, 3);  // one reduce, two quantize: shards were kept
  EXPECT_GT(second.tasks_reused, 0);
  EXPECT_EQ(second.checkpoint.files, first.checkpoint.files);

  LocalJob other = job;
  other.quant.seed = 99;
  EXPECT_THAT(RunLocalJob(other),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("another job")));
}

TEST_F(PipelineTasksTest, BadModelInputsAreClearErrors) {
  // Missing config.
  HessianTaskInput in{scratch_.Sub("nowhere"), Calibration(), 0, 1, {}};
  EXPECT_THAT(RunHessianTask(in), StatusIs(absl::StatusCode::kNotFound));

  // Unsupported architecture.
  const std::string gpt2 = scratch_.Sub("gpt2");
  fs::copy(model_dir(), gpt2);
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(gpt2 + "/config.json"));
  nlohmann::json config = nlohmann::json::parse(text);
  config["architectures"] = {"GPT2LMHeadModel"};
  ASSERT_THAT(WriteFileAtomic(gpt2 + "/config.json", config.dump()), IsOk());
  in.model_dir = gpt2;
  EXPECT_THAT(RunHessianTask(in),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("GPT2LMHeadModel")));

  // Truncated weights.
  const std::string cut = scratch_.Sub("cut");
  fs::copy(model_dir(), cut);
  fs::resize_file(cut + "/model.safetensors", fs::file_size(cut + "/model.safetensors") / 2);
  in.model_dir = cut;
  EXPECT_THAT(RunHessianTask(in), StatusIs(absl::StatusCode::kInvalidArgument));

  // Shape/config mismatch: config.json says a wider MLP than stored.
  const std::string wide = scratch_.Sub("wide");
  fs::copy(model_dir(), wide);
  config = nlohmann::json::parse(*ReadFile(wide + "/config.json"));
  config["intermediate_size"] = 64;
  ASSERT_THAT(WriteFileAtomic(wide + "/config.json", config.dump()), IsOk());
  in.model_dir = wide;
  EXPECT_THAT(RunHessianTask(in), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("mlp")));
}

TEST_F(PipelineTasksTest, BadTaskInputsAreClearErrors) {
  const BlobMap hessians = Hessians();
  const std::string linear = "model.layers.0.self_attn.o_proj";
  QuantizeTaskInput qi{model_dir(), linear, hessians.at("model.layers.0.down"), SmallSettings()};
  EXPECT_THAT(RunQuantizeTask(qi),  // gate/down's 48-wide Hessian for a 32-input linear
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("another group")));
  qi.hessian = "corrupt";
  EXPECT_THAT(RunQuantizeTask(qi), StatusIs(absl::StatusCode::kInvalidArgument));
  qi.hessian = hessians.at("model.layers.0.o");
  qi.linear = "model.layers.7.self_attn.o_proj";
  EXPECT_THAT(RunQuantizeTask(qi), StatusIs(absl::StatusCode::kNotFound));
  qi.linear = linear;
  qi.quant.output_dtype = "int4";
  EXPECT_THAT(RunQuantizeTask(qi), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("output_dtype")));
  qi.quant.output_dtype = "";
  VPTQ_ASSERT_OK_AND_ASSIGN(QuantizeTaskOutput q, RunQuantizeTask(qi));

  // Assemble: misnamed, corrupt, from another model, another dtype.
  EXPECT_THAT(RunAssembleTask({model_dir(), {{"model.layers.1.self_attn.o_proj", q.blob}}, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("holds")));
  EXPECT_THAT(RunAssembleTask({model_dir(), {{linear, "junk"}}, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(linear)));
  model::testing::SyntheticModelOptions wide;
  wide.hidden = 64;
  wide.heads = 4;
  wide.layers = 2;
  ASSERT_THAT(model::testing::WriteSyntheticModel(scratch_.Sub("wide"), wide), IsOk());
  EXPECT_THAT(RunAssembleTask({scratch_.Sub("wide"), {{linear, q.blob}}, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("another model")));
  AssembleTaskInput fp16{model_dir(), {{linear, q.blob}}, {}};
  fp16.options.output_dtype = "fp16";
  EXPECT_THAT(RunAssembleTask(fp16), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("same output_dtype")));

  // A model that is already quantized.
  VPTQ_ASSERT_OK_AND_ASSIGN(AssembleTaskOutput a, RunAssembleTask({model_dir(), {{linear, q.blob}}, {}}));
  const std::string quantized_model = scratch_.Sub("already");
  fs::copy(model_dir(), quantized_model);
  ASSERT_THAT(WriteFileAtomic(quantized_model + "/config.json", a.files.at("config.json")), IsOk());
  EXPECT_THAT(RunAssembleTask({quantized_model, {}, {}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already")));

  // Eval of a checkpoint whose config_for_layers contradicts its config.
  BlobMap files = a.files;
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(files.at("config.json"));
  config["quantization_config"]["config_for_layers"][linear]["in_features"] = 48;
  files["config.json"] = config.dump();
  EvalTaskInput ei{model_dir(), "", files, *Job().eval};
  EXPECT_THAT(RunEvalTask(ei), StatusIs(absl::StatusCode::kInvalidArgument));
  files.erase("model.safetensors");
  ei.checkpoint_files = files;
  EXPECT_THAT(RunEvalTask(ei), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace vptq::pipeline
