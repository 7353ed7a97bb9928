// kmeans benchmark (issue 2 §4): Hessian-weighted k-means on realistic-ish
// data, against the machine's GEMM peak and against faiss's k-means.
//
//   build/bench/kmeans_benchmark [--vectors 262144 --dim 8 --k 4096 --iters 10
//                                 --threads 2 --repeats 3 --slow-repeats 1
//                                 --seed 1]
//
// Prints one JSON object on stdout; progress goes to stderr. Every time is
// the median over --repeats runs in this process (--slow-repeats for the
// reference-path k-means and faiss, which take tens of seconds a run here):
//  - gemm_gflops: torch::mm of two 4096x4096 fp32 matrices (the peak).
//  - assign_gflops: AssignNearest (fused kernel), 2*N*K*v flops per call;
//    ref_assign_gflops: AssignNearestRef (tiled addmm + argmin).
//  - seconds_per_iter: WeightedKMeans from fixed initial centroids, iters
//    Lloyd iterations (tol 0), whole call divided by iterations (it includes
//    the final assignment faiss does not do).
//  - faiss: faiss::Clustering with the same data, weights, initial
//    centroids, K, iterations and threads (IndexFlatL2 assignment).
//  - inertia_vs_faiss: both final inertias from the same code
//    (WeightedInertia, exact fp64 sum of w*||x - c||^2).
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <omp.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <vector>

#include "worker/quant/assign_nearest_cpu.h"
#include "worker/quant/kmeans.h"

namespace {

using vptq::quant::KMeansOptions;
using vptq::quant::KMeansResult;

double Seconds(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double Median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double MedianSeconds(int repeats, const std::function<void()>& fn) {
  std::vector<double> t;
  for (int r = 0; r < std::max(repeats, 1); ++r) t.push_back(Seconds(fn));
  return Median(t);
}

// Columns of a linear layer (out x in) with heavy-tailed entries (Student t,
// 4 degrees of freedom) and log-normal per-output-channel scales, cut into
// vectors of v consecutive rows of one column as VPTQ does; each vector's
// weight is its column's diag(H)-like value: log-normal, with 1% outlier
// input channels 20x larger.
struct Data {
  torch::Tensor x;  // (n, v)
  torch::Tensor w;  // (n,)
};

Data MakeData(int64_t n, int64_t v, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t rows = 4096 / v * v;               // output channels
  const int64_t cols = (n + rows / v - 1) / (rows / v);  // input channels
  const torch::Tensor chi2 = torch::randn({rows, cols, 4}).square().sum(2) / 4;
  const torch::Tensor t4 = torch::randn({rows, cols}) / chi2.sqrt();
  const torch::Tensor scale = (0.5 * torch::randn({rows, 1})).exp() * 0.02;
  const torch::Tensor weight = t4 * scale;  // (rows, cols)
  torch::Tensor h = torch::randn({cols}).exp();
  h.masked_fill_(torch::rand({cols}) < 0.01, 0).add_(
      (torch::rand({cols}) < 0.01).to(torch::kFloat) * 20 * h.mean());
  const torch::Tensor x = weight.t().contiguous().reshape({cols * (rows / v), v});
  const torch::Tensor w = h.repeat_interleave(rows / v);
  return {x.slice(0, 0, n).contiguous(), w.slice(0, 0, n).contiguous()};
}

}  // namespace

int Run(int argc, char** argv) {
  CLI::App app{"Weighted k-means benchmark (JSON line on stdout)"};
  int64_t n = 262144, v = 8, k = 4096;
  int iters = 10, threads = 2, repeats = 3;
  uint64_t seed = 1;
  app.add_option("--vectors", n, "number of vectors");
  app.add_option("--dim", v, "vector length v");
  app.add_option("--k", k, "centroids");
  app.add_option("--iters", iters, "Lloyd iterations");
  app.add_option("--threads", threads, "threads (LibTorch and OpenMP)");
  app.add_option("--repeats", repeats, "repeats per measurement (median)");
  app.add_option("--seed", seed, "data and seeding seed");
  int slow_repeats = 1;
  app.add_option("--slow-repeats", slow_repeats,
                 "repeats of the slow runs: reference-path k-means and faiss");
  bool skip_slow = false;
  app.add_flag("--skip-slow", skip_slow,
               "only the fast path (no reference k-means, no faiss; for profiling)");
  CLI11_PARSE(app, argc, argv);

  torch::set_num_threads(threads);
  omp_set_num_threads(threads);
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  auto progress = [&](const char* msg) {
    std::cerr << "kmeans_benchmark: "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
              << " s: " << msg << std::endl;
  };

  progress("data + k-means++ seeding");
  const Data d = MakeData(n, v, seed);
  KMeansOptions opt{.k = k, .iters = iters, .tol = 0, .seed = seed};
  torch::Tensor seeds;
  const double seed_s = Seconds([&] { seeds = vptq::quant::WeightedKMeansPlusPlus(d.x, d.w, opt).value(); });
  const double assign_flops = 2.0 * n * k * v;

  // GEMM peak and the fused assignment alternate, so that load from other
  // processes hits both alike.
  progress("GEMM peak and assignment kernel");
  const torch::Tensor a = torch::randn({4096, 4096});
  const torch::Tensor b = torch::randn({4096, 4096});
  torch::mm(a, b);  // warm up
  vptq::quant::AssignNearest(d.x, seeds);
  std::vector<double> gemm_t, assign_t;
  for (int r = 0; r < std::max(repeats, 3); ++r) {
    gemm_t.push_back(Seconds([&] { torch::mm(a, b); }));
    assign_t.push_back(Seconds([&] { vptq::quant::AssignNearest(d.x, seeds); }));
  }
  const double gemm_s = Median(gemm_t);
  const double assign_s = Median(assign_t);
  const double gemm_gflops = 2.0 * 4096 * 4096 * 4096 / gemm_s / 1e9;

  progress("k-means (fast path)");
  opt.init_centroids = seeds;
  KMeansResult ours;
  const double ours_s =
      MedianSeconds(repeats, [&] { ours = vptq::quant::WeightedKMeans(d.x, d.w, opt).value(); });
  if (skip_slow) {
    std::cout << nlohmann::json{{"bench", "kmeans"},
                                {"gemm_gflops", gemm_gflops},
                                {"assign_gflops", assign_flops / assign_s / 1e9},
                                {"assign_vs_gemm", assign_flops / assign_s / 1e9 / gemm_gflops},
                                {"seed_seconds", seed_s},
                                {"seconds_per_iter", ours_s / std::max(1, ours.iterations)}}
                     .dump()
              << std::endl;
    return 0;
  }
  progress("reference assignment");
  const double ref_assign_s =
      MedianSeconds(repeats, [&] { vptq::quant::AssignNearestRef(d.x, seeds); });
  progress("k-means (reference path)");
  KMeansOptions ref_opt = opt;
  ref_opt.fast_kernel = false;
  KMeansResult ref;
  const double ref_s =
      MedianSeconds(slow_repeats, [&] { ref = vptq::quant::WeightedKMeans(d.x, d.w, ref_opt).value(); });

  progress("faiss k-means");
  std::vector<float> faiss_centroids;
  const torch::Tensor seeds_c = seeds.contiguous();
  const double faiss_s = MedianSeconds(slow_repeats, [&] {
    faiss::ClusteringParameters cp;
    cp.niter = iters;
    cp.seed = static_cast<int>(seed);
    cp.max_points_per_centroid = static_cast<int>(n);  // no subsampling
    cp.min_points_per_centroid = 1;
    faiss::Clustering clus(static_cast<int>(v), static_cast<int>(k), cp);
    clus.centroids.assign(seeds_c.data_ptr<float>(), seeds_c.data_ptr<float>() + k * v);
    faiss::IndexFlatL2 index(static_cast<int>(v));
    clus.train(n, d.x.data_ptr<float>(), index, d.w.data_ptr<float>());
    faiss_centroids = clus.centroids;
  });
  const torch::Tensor faiss_c = torch::from_blob(faiss_centroids.data(), {k, v}).clone();

  const double ours_inertia = vptq::quant::WeightedInertia(d.x, d.w, ours.centroids).value();
  const double ref_inertia = vptq::quant::WeightedInertia(d.x, d.w, ref.centroids).value();
  const double faiss_inertia = vptq::quant::WeightedInertia(d.x, d.w, faiss_c).value();
  const double seed_inertia = vptq::quant::WeightedInertia(d.x, d.w, seeds).value();

  const double assign_gflops = assign_flops / assign_s / 1e9;
  const double ref_assign_gflops = assign_flops / ref_assign_s / 1e9;
  const nlohmann::json line = {
      {"bench", "kmeans"},
      {"vectors", n},
      {"dim", v},
      {"k", k},
      {"iters", iters},
      {"iterations_run", ours.iterations},
      {"threads", threads},
      {"repeats", repeats},
      {"slow_repeats", slow_repeats},
      {"isa", std::string(vptq::quant::CpuIsaName(vptq::quant::BestCpuIsa()))},
      {"gemm_gflops", gemm_gflops},
      {"assign_gflops", assign_gflops},
      {"assign_vs_gemm", assign_gflops / gemm_gflops},
      {"ref_assign_gflops", ref_assign_gflops},
      {"ref_assign_vs_gemm", ref_assign_gflops / gemm_gflops},
      {"seed_seconds", seed_s},
      {"seconds_total", ours_s},
      {"seconds_per_iter", ours_s / std::max(1, ours.iterations)},
      {"ref_seconds_per_iter", ref_s / std::max(1, ref.iterations)},
      {"faiss_seconds_per_iter", faiss_s / iters},
      {"time_vs_faiss", ours_s / faiss_s},
      {"ref_time_vs_faiss", ref_s / faiss_s},
      {"seed_inertia", seed_inertia},
      {"inertia", ours_inertia},
      {"ref_inertia", ref_inertia},
      {"faiss_inertia", faiss_inertia},
      {"inertia_vs_faiss", ours_inertia / faiss_inertia},
      {"ref_inertia_vs_faiss", ref_inertia / faiss_inertia},
  };
  std::cout << line.dump() << std::endl;
  return 0;
}

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {  // a failed StatusOr::value()
    std::cerr << "kmeans_benchmark: " << e.what() << std::endl;
    return 1;
  }
}
