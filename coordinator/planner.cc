#include "coordinator/planner.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vptq::coordinator {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

struct Group {
  std::string key;
  int64_t layer = 0;
  int64_t dim = 0;
  std::vector<std::string> linears;
};

v1::TaskRecord NewTask(const std::string& job_id, int index, v1::TaskKind kind,
                       std::string name) {
  v1::TaskRecord t;
  t.set_task_id(TaskId(job_id, index));
  t.set_job_id(job_id);
  t.set_index(index);
  t.set_order(index);
  t.set_kind(kind);
  t.set_name(std::move(name));
  t.set_state(v1::TASK_STATE_BLOCKED);
  return t;
}

void AddDep(v1::TaskRecord* t, const std::string& producer, std::string output,
            std::string input_name) {
  v1::TaskDependency* d = t->add_deps();
  d->set_task_id(producer);
  d->set_output(std::move(output));
  d->set_input_name(std::move(input_name));
}

}  // namespace

std::string TaskId(const std::string& job_id, int index) {
  return absl::StrFormat("%s/%05d", job_id, index);
}

std::string JobIdOfTask(absl::string_view task_id) {
  size_t slash = task_id.rfind('/');
  if (slash == absl::string_view::npos || slash == 0) return "";
  return std::string(task_id.substr(0, slash));
}

std::string HessianOutputName(absl::string_view group) { return absl::StrCat("hessian/", group); }
std::string ShardInputName(int shard) { return absl::StrFormat("shard-%05d", shard); }

PlanModel PlanModelFromLayout(const ModelLayout& layout) {
  PlanModel m;
  m.num_layers = layout.config.num_hidden_layers;
  m.hidden_size = layout.config.hidden_size;
  m.bytes_per_param = static_cast<int64_t>(DTypeSize(layout.dtype));
  for (const auto& [name, w] : layout.weights.tensors) m.total_params += w.numel();
  for (const LinearSpec& l : layout.linears) {
    m.linears.push_back(PlanLinear{l.name, l.layer, l.out_features, l.in_features, l.has_bias,
                                   LinearInputKey(l)});
  }
  return m;
}

PlanModel LlamaShapedModel(const LlamaShape& s) {
  PlanModel m;
  m.num_layers = s.num_layers;
  m.hidden_size = s.hidden_size;
  const int64_t head_dim = s.num_heads > 0 ? s.hidden_size / s.num_heads : 0;
  const int64_t q_out = s.num_heads * head_dim;
  const int64_t kv_out = s.num_kv_heads * head_dim;
  for (int64_t layer = 0; layer < s.num_layers; ++layer) {
    for (LinearKind kind : kAllLinearKinds) {
      int64_t out = 0, in = 0;
      switch (kind) {
        case LinearKind::kQ: out = q_out; in = s.hidden_size; break;
        case LinearKind::kK:
        case LinearKind::kV: out = kv_out; in = s.hidden_size; break;
        case LinearKind::kO: out = s.hidden_size; in = q_out; break;
        case LinearKind::kGate:
        case LinearKind::kUp: out = s.intermediate_size; in = s.hidden_size; break;
        case LinearKind::kDown: out = s.hidden_size; in = s.intermediate_size; break;
      }
      m.linears.push_back(PlanLinear{LinearName(layer, kind), layer, out, in, false,
                                     LinearInputKey(layer, InputOf(kind))});
      m.total_params += out * in;
    }
    m.total_params += 2 * s.hidden_size;  // norms
  }
  m.total_params += 2 * s.vocab_size * s.hidden_size + s.hidden_size;
  return m;
}

absl::StatusOr<std::vector<v1::TaskRecord>> PlanJob(const std::string& job_id,
                                                    const PlanModel& model,
                                                    const PlanOptions& options) {
  if (model.linears.empty()) {
    return absl::InvalidArgumentError("model has no linears to quantize");
  }
  if (options.num_shards < 1 || options.num_shards > options.num_sequences) {
    return absl::InvalidArgumentError(absl::StrCat(
        "calibration.num_shards is ", options.num_shards, "; it must be in [1, num_sequences = ",
        options.num_sequences, "]"));
  }

  // Distinct inputs in model order.
  std::vector<Group> groups;
  std::map<std::string, size_t> group_index;
  std::map<int64_t, int64_t> layer_params;
  for (const PlanLinear& l : model.linears) {
    if (l.group.empty() || l.out_features <= 0 || l.in_features <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("linear ", l.name, " needs a group and positive shape"));
    }
    auto [it, inserted] = group_index.emplace(l.group, groups.size());
    if (inserted) groups.push_back(Group{l.group, l.layer, l.in_features, {}});
    Group& g = groups[it->second];
    if (g.dim != l.in_features) {
      return absl::InvalidArgumentError(absl::StrCat("linears of group ", l.group,
                                                     " disagree on in_features (", g.dim,
                                                     " vs ", l.in_features, " of ", l.name,
                                                     ")"));
    }
    g.linears.push_back(l.name);
    layer_params[l.layer] += l.out_features * l.in_features;
  }
  int64_t max_layer_params = 0;
  for (const auto& [layer, p] : layer_params) max_layer_params = std::max(max_layer_params, p);
  std::map<int64_t, int64_t> layer_accum_bytes;  // fp64 partial sums of one layer
  for (const Group& g : groups) layer_accum_bytes[g.layer] += g.dim * g.dim * 8;
  int64_t max_accum = 0;
  for (const auto& [layer, b] : layer_accum_bytes) max_accum = std::max(max_accum, b);

  std::vector<v1::TaskRecord> tasks;
  const double params = static_cast<double>(std::max<int64_t>(model.total_params, 1));

  // HESSIAN shards.
  std::vector<std::string> shard_ids;
  for (int s = 0; s < options.num_shards; ++s) {
    const int64_t first = options.num_sequences * s / options.num_shards;
    const int64_t next = options.num_sequences * (s + 1) / options.num_shards;
    v1::TaskRecord t = NewTask(job_id, static_cast<int>(tasks.size()), v1::TASK_KIND_HESSIAN,
                               absl::StrFormat("hessian/shard-%05d", s));
    v1::HessianTask* h = t.mutable_payload()->mutable_hessian();
    h->set_shard(s);
    h->set_num_shards(options.num_shards);
    h->set_first_sequence(first);
    h->set_num_sequences(next - first);
    const double tokens = static_cast<double>((next - first) * options.sequence_length);
    double cost = 2.0 * tokens * params;
    for (const Group& g : groups) {
      h->add_groups(g.key);
      t.add_required_outputs(HessianOutputName(g.key));
      cost += tokens * static_cast<double>(g.dim) * static_cast<double>(g.dim);
    }
    t.set_cost(cost);
    t.mutable_requirements()->set_device_kind(options.heavy_device);
    t.mutable_requirements()->set_min_device_memory_bytes(
        max_layer_params * model.bytes_per_param + max_accum + 256 * kMiB);
    t.set_state(v1::TASK_STATE_READY);
    shard_ids.push_back(t.task_id());
    tasks.push_back(std::move(t));
  }

  // REDUCE per group.
  std::map<std::string, std::string> reduce_of_group;
  for (const Group& g : groups) {
    v1::TaskRecord t = NewTask(job_id, static_cast<int>(tasks.size()), v1::TASK_KIND_REDUCE,
                               absl::StrCat("reduce/", g.key));
    v1::ReduceTask* r = t.mutable_payload()->mutable_reduce();
    r->set_group(g.key);
    r->set_layer(static_cast<int32_t>(g.layer));
    r->set_dim(g.dim);
    for (const auto& l : g.linears) r->add_linears(l);
    for (int s = 0; s < options.num_shards; ++s) {
      AddDep(&t, shard_ids[s], HessianOutputName(g.key), ShardInputName(s));
    }
    t.add_required_outputs("hessian");
    t.set_cost(static_cast<double>(options.num_shards) * static_cast<double>(g.dim * g.dim));
    t.mutable_requirements()->set_min_host_memory_bytes(2 * g.dim * g.dim * 8 + 64 * kMiB);
    reduce_of_group[g.key] = t.task_id();
    tasks.push_back(std::move(t));
  }

  // QUANTIZE per linear, largest first (stable: model order among equals).
  std::vector<const PlanLinear*> order;
  for (const PlanLinear& l : model.linears) order.push_back(&l);
  std::stable_sort(order.begin(), order.end(), [](const PlanLinear* a, const PlanLinear* b) {
    return a->out_features * a->in_features > b->out_features * b->in_features;
  });
  std::map<std::string, std::string> quantize_of_linear;
  for (const PlanLinear* l : order) {
    v1::TaskRecord t = NewTask(job_id, static_cast<int>(tasks.size()), v1::TASK_KIND_QUANTIZE,
                               absl::StrCat("quantize/", l->name));
    v1::QuantizeTask* q = t.mutable_payload()->mutable_quantize();
    q->set_linear(l->name);
    q->set_layer(static_cast<int32_t>(l->layer));
    q->set_out_features(l->out_features);
    q->set_in_features(l->in_features);
    q->set_has_bias(l->has_bias);
    q->set_group(l->group);
    AddDep(&t, reduce_of_group[l->group], "hessian", "hessian");
    t.add_required_outputs("quantized");
    const double m = static_cast<double>(l->out_features), n = static_cast<double>(l->in_features);
    t.set_cost(m * n * (n + 2048.0));
    t.set_linear(true);
    t.mutable_requirements()->set_device_kind(options.heavy_device);
    t.mutable_requirements()->set_min_device_memory_bytes(
        3 * l->in_features * l->in_features * 4 + 4 * l->out_features * l->in_features * 4 +
        256 * kMiB);
    quantize_of_linear[l->name] = t.task_id();
    tasks.push_back(std::move(t));
  }

  // ASSEMBLE.
  v1::TaskRecord assemble =
      NewTask(job_id, static_cast<int>(tasks.size()), v1::TASK_KIND_ASSEMBLE, "assemble");
  for (const PlanLinear& l : model.linears) {
    assemble.mutable_payload()->mutable_assemble()->add_linears(l.name);
    AddDep(&assemble, quantize_of_linear[l.name], "quantized", l.name);
  }
  assemble.add_required_outputs("config.json");
  assemble.set_cost(params);
  assemble.set_keep_outputs(true);
  assemble.mutable_requirements()->set_min_host_memory_bytes(
      model.total_params * 2 + 256 * kMiB);
  const std::string assemble_id = assemble.task_id();
  tasks.push_back(std::move(assemble));

  if (options.eval) {
    v1::TaskRecord eval =
        NewTask(job_id, static_cast<int>(tasks.size()), v1::TASK_KIND_EVAL, "eval");
    eval.mutable_payload()->mutable_eval();
    AddDep(&eval, assemble_id, "", "checkpoint/");
    eval.set_cost(4.0 * static_cast<double>(options.sequence_length) * 32.0 * params);
    eval.mutable_requirements()->set_device_kind(options.heavy_device);
    // The original and the packed model side by side, one decoder layer at
    // a time, plus embeddings and head (fp32).
    int64_t layers_total = 0;
    for (const auto& [layer, p] : layer_params) layers_total += p;
    const int64_t outside_layers = std::max<int64_t>(0, model.total_params - layers_total);
    eval.mutable_requirements()->set_min_device_memory_bytes(
        2 * (max_layer_params + outside_layers) * 4 + 512 * kMiB);
    tasks.push_back(std::move(eval));
  }
  return tasks;
}

}  // namespace vptq::coordinator
