// `layer` benchmark: one realistic synthetic linear (heavy-tailed weights,
// correlated inputs with outlier channels, fixed seed) quantized by VPTQ,
// GPTQ-scalar and RTN. One JSON object per method on stdout:
//   {"bench":"layer","method":"vptq","bits_target":2,"bpw":2.03,
//    "proxy_loss":...,"seconds":...,"peak_rss_mb":...,...}
// VPTQ lines also carry proxy_loss_vs_gptq (VPTQ loss / GPTQ loss at the
// same bits_target, both measured in this run).
//
// Every method runs in a fresh child process (this binary with --child), so
// peak_rss_mb is that method's own peak (ru_maxrss), including the ~12
// bytes/weight of generating the layer and its Hessian (reported separately
// as rss_after_setup_mb). Medians over --repeats runs. Children get
// OMP_WAIT_POLICY=PASSIVE unless it is set (see main); each line records it.
//
//   bench/run layer                       # 4096x4096, all methods
//   bench/run layer --size 1024 --methods gptq2,vptq2
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/logging.h"
#include "worker/quant/scalar_baselines.h"
#include "worker/quant/synthetic.h"
#include "worker/quant/vptq_options.h"
#include "worker/quant/vptq_quantizer.h"

namespace {

using nlohmann::json;
namespace q = vptq::quant;

struct Flags {
  int64_t size = 4096;
  std::string methods = "rtn2,rtn3,rtn4,gptq2,gptq3,gptq4,vptq2,vptq3";
  int repeats = 1;
  uint64_t seed = 1234;
  int threads = 2;
  double vptq_slack = 0.1;  // VPTQ at b bits may use up to b + slack bpw
  int kmeans_iters = -1;    // -1: the quantizer's default
  int64_t kmeans_max_vectors = -1;
  int refine_iters = 0;
  bool norm = false;
  int64_t outlier_channels = -1;  // synthetic input outlier channels
  std::vector<std::string> vptq_override;  // "bits:v:K:K_r"
  std::string child;  // internal: run one method and print its line
};

double PeakRssMb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // KiB on Linux
}

// "vptq3" -> {"vptq", 3}.
std::optional<std::pair<std::string, int>> ParseMethod(const std::string& m) {
  for (const char* name : {"vptq", "gptq", "rtn"}) {
    const std::string prefix = name;
    if (m.rfind(prefix, 0) == 0 && m.size() == prefix.size() + 1 &&
        m.back() >= '1' && m.back() <= '8') {
      return std::make_pair(prefix, m.back() - '0');
    }
  }
  return std::nullopt;
}

absl::StatusOr<q::VptqOptions> VptqOptionsFor(const Flags& f, int bits,
                                              int64_t m, int64_t n) {
  for (const std::string& o : f.vptq_override) {
    int b = 0;
    long long v = 0, k = 0, kr = 0;
    if (std::sscanf(o.c_str(), "%d:%lld:%lld:%lld", &b, &v, &k, &kr) == 4 &&
        b == bits) {
      q::VptqOptions opt;
      opt.vector_len = v;
      opt.num_centroids = k;
      opt.num_res_centroids = kr;
      return opt;
    }
  }
  return q::ChooseOptionsForBits(bits + f.vptq_slack, m, n, 16);
}

int RunChild(const Flags& f) {
  auto parsed = ParseMethod(f.child);
  if (!parsed) {
    std::cerr << "layer_benchmark: unknown method '" << f.child << "'\n";
    return 3;
  }
  const auto& [method, bits] = *parsed;
  torch::set_num_threads(f.threads);
  auto layer = q::MakeSyntheticLinear({.out_features = f.size,
                                       .in_features = f.size,
                                       .seed = f.seed,
                                       .outlier_channels = f.outlier_channels});
  if (!layer.ok()) {
    std::cerr << layer.status().ToString() << "\n";
    return 1;
  }
  const double rss_setup = PeakRssMb();
  json line = {{"bench", "layer"},
               {"method", method},
               {"bits_target", bits},
               {"out_features", f.size},
               {"in_features", f.size},
               {"seed", f.seed},
               {"outlier_channels", layer->outlier_channels.size()},
               {"threads", f.threads},
               {"omp_wait_policy", std::getenv("OMP_WAIT_POLICY") != nullptr
                                       ? std::getenv("OMP_WAIT_POLICY")
                                       : "default"}};
  if (method == "vptq") {
    auto opt = VptqOptionsFor(f, bits, f.size, f.size);
    if (!opt.ok()) {
      std::cerr << opt.status().ToString() << "\n";
      return 1;
    }
    opt->seed = f.seed;
    if (f.kmeans_iters > 0) opt->kmeans_iters = f.kmeans_iters;
    if (f.kmeans_max_vectors >= 0) opt->kmeans_max_vectors = f.kmeans_max_vectors;
    opt->refine_iters = f.refine_iters;
    opt->enable_norm = f.norm;
    auto r = q::QuantizeLinear(layer->weight, layer->hessian, *opt);
    if (!r.ok()) {
      std::cerr << r.status().ToString() << "\n";
      return 1;
    }
    const auto& s = r->stats;
    line["bpw"] = s.bits_per_weight;
    line["proxy_loss"] = s.proxy_loss;
    line["seconds"] = s.seconds.total;
    line["config"] = {{"v", opt->vector_len},
                      {"K", opt->num_centroids},
                      {"K_r", opt->num_res_centroids},
                      {"G", opt->group_num},
                      {"perm", opt->enable_perm},
                      {"norm", opt->enable_norm},
                      {"kmeans_iters", opt->kmeans_iters},
                      {"kmeans_max_vectors", opt->kmeans_max_vectors},
                      {"refine_iters", opt->refine_iters}};
    line["stage_seconds"] = {{"perm", s.seconds.perm},
                             {"norm", s.seconds.norm},
                             {"kmeans", s.seconds.kmeans},
                             {"pass", s.seconds.pass},
                             {"residual", s.seconds.residual},
                             {"refine", s.seconds.refine}};
    line["kmeans_iterations"] = s.kmeans_iterations;
    std::string why;
    line["stock_kernel"] = q::InStockKernelEnvelope(r->quantized.layout, &why);
  } else {
    q::ScalarQuantOptions opt{.bits = bits};
    auto r = method == "gptq"
                 ? q::QuantizeGptq(layer->weight, layer->hessian, opt)
                 : q::QuantizeRtn(layer->weight, layer->hessian, opt);
    if (!r.ok()) {
      std::cerr << r.status().ToString() << "\n";
      return 1;
    }
    line["bpw"] = r->stats.bits_per_weight;
    line["proxy_loss"] = r->stats.proxy_loss;
    line["seconds"] = r->stats.seconds;
    line["config"] = {{"group_size", opt.group_size},
                      {"act_order", method == "gptq"},
                      {"param_dtype", "float16"}};
  }
  line["peak_rss_mb"] = PeakRssMb();
  line["rss_after_setup_mb"] = rss_setup;
  std::cout << line.dump() << std::endl;
  return 0;
}

// Runs this binary with --child METHOD; returns its JSON line.
std::optional<json> SpawnChild(const std::vector<std::string>& base_args,
                               const std::string& method) {
  int fds[2];
  if (pipe(fds) != 0) return std::nullopt;
  const pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<std::string> args = base_args;
    args.push_back("--child");
    args.push_back(method);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t got;
  while ((got = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, got);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  std::istringstream lines(out);
  std::string l;
  std::optional<json> result;
  while (std::getline(lines, l)) {
    json j = json::parse(l, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("bench", "") == "layer") result = j;
  }
  return result;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"VPTQ vs GPTQ-scalar vs RTN on one synthetic linear"};
  app.add_option("--size", f.size, "M = N of the linear");
  app.add_option("--methods", f.methods,
                 "comma list of rtnB, gptqB, vptqB (B = bits)");
  app.add_option("--repeats", f.repeats, "runs per method (median)");
  app.add_option("--seed", f.seed, "layer and k-means seed");
  app.add_option("--threads", f.threads, "torch threads");
  app.add_option("--vptq-slack", f.vptq_slack,
                 "VPTQ at B bits may use B + slack bits per weight");
  app.add_option("--kmeans-iters", f.kmeans_iters, "VPTQ k-means iterations");
  app.add_option("--kmeans-max-vectors", f.kmeans_max_vectors,
                 "VPTQ k-means training sample (0 = all)");
  app.add_option("--refine-iters", f.refine_iters, "VPTQ refinement rounds");
  app.add_flag("--norm", f.norm, "VPTQ with min-max normalisation");
  app.add_option("--outlier-channels", f.outlier_channels,
                 "input outlier channels of the synthetic layer (-1: N/512)");
  app.add_option("--vptq", f.vptq_override,
                 "override a VPTQ config: bits:v:K:K_r (e.g. 3:4:4096:0)");
  app.add_option("--child", f.child)->group("");
  CLI11_PARSE(app, argc, argv);
  vptq::InitLogging(vptq::LogOptions{.level = "warn"});
  torch::set_num_threads(f.threads);

  if (!f.child.empty()) return RunChild(f);

  // Children run with passive OpenMP waits unless the caller chose: the
  // pass alternates short parallel regions with serial per-column work, and
  // on a small shared machine spinning workers steal the core that serial
  // work needs (measured ~2x slower). The policy is recorded in each line.
  setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);

  std::vector<std::string> base = {argv[0]};
  for (int i = 1; i < argc; ++i) base.emplace_back(argv[i]);
  std::vector<std::string> methods;
  std::stringstream ss(f.methods);
  for (std::string m; std::getline(ss, m, ',');) {
    if (!ParseMethod(m)) {
      std::cerr << "layer_benchmark: unknown method '" << m
                << "' (use rtnB, gptqB or vptqB)\n";
      return 3;
    }
    methods.push_back(m);
  }
  // Scalar baselines first, so VPTQ lines can carry their ratio.
  std::stable_sort(methods.begin(), methods.end(),
                   [](const std::string& a, const std::string& b) {
                     return (a.rfind("vptq", 0) == 0) < (b.rfind("vptq", 0) == 0);
                   });
  std::map<int, double> gptq_loss;
  int failures = 0;
  for (const std::string& m : methods) {
    std::vector<json> runs;
    for (int r = 0; r < std::max(1, f.repeats); ++r) {
      std::cerr << "layer_benchmark: " << m << " run " << r + 1 << "/"
                << f.repeats << " (" << f.size << "x" << f.size << ")\n";
      auto j = SpawnChild(base, m);
      if (j) runs.push_back(*j);
    }
    if (runs.empty()) {
      std::cerr << "layer_benchmark: " << m << " failed\n";
      ++failures;
      continue;
    }
    json line = runs.back();
    for (const char* key : {"seconds", "proxy_loss", "peak_rss_mb"}) {
      std::vector<double> v;
      for (const json& j : runs) v.push_back(j.at(key).get<double>());
      line[key] = Median(v);
    }
    line["repeats"] = runs.size();
    const auto [method, bits] = *ParseMethod(m);
    if (method == "gptq") gptq_loss[bits] = line["proxy_loss"].get<double>();
    if (method == "vptq" && gptq_loss.count(bits)) {
      line["gptq_proxy_loss"] = gptq_loss[bits];
      line["proxy_loss_vs_gptq"] =
          line["proxy_loss"].get<double>() / gptq_loss[bits];
    }
    std::cout << line.dump() << std::endl;
  }
  return failures == 0 ? 0 : 1;
}
