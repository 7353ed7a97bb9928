// A whole job on a tiny random model: a Coordinator (in-memory store) and
// worker loops running the real task runner — two in-process loops, and one
// over gRPC. The downloaded checkpoint must be byte-identical to what
// worker/pipeline's RunLocalJob writes for the same settings.
#include <filesystem>
#include <thread>

#include <grpcpp/grpcpp.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coordinator/coordinator.h"
#include "coordinator/grpc_services.h"
#include "coordinator/memory_job_store.h"
#include "coordinator/sim_workers.h"
#include "worker/grpc_transport.h"
#include "worker/pipeline/checkpoint_dir.h"
#include "worker/worker_loop.h"
#include "worker/worker_test_util.h"

namespace vptq::worker {
namespace {

using ::vptq::testing::IsOk;

constexpr char kClientToken[] = "client-token-0123456789";
constexpr char kWorkerToken[] = "worker-token-0123456789";

class WorkerJobTest : public testing::WorkerPipelineTest {
 protected:
  void SetUp() override {
    WorkerPipelineTest::SetUp();
    coordinator::CoordinatorOptions o;
    o.config.add_input_roots(scratch_.path());
    o.config.add_output_roots(scratch_.path());
    o.tick_interval = absl::Milliseconds(20);
    auto c = coordinator::Coordinator::Open(std::make_unique<coordinator::MemoryJobStore>(), o);
    ASSERT_THAT(c, IsOk());
    coordinator_ = *std::move(c);
  }
  void TearDown() override { coordinator_.reset(); }

  std::string Submit(const v1::JobSpec& spec) {
    v1::SubmitJobRequest req;
    *req.mutable_spec() = spec;
    auto r = coordinator_->SubmitJob(req);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? r->job_id() : "";
  }

  // Runs one loop per transport until the job ends.
  void RunLoops(const std::string& job_id, const std::vector<WorkerTransport*>& transports) {
    std::vector<std::unique_ptr<WorkerLoop>> loops;
    std::vector<std::thread> threads;
    for (size_t i = 0; i < transports.size(); ++i) {
      WorkerLoopOptions o;
      o.worker_id = absl::StrCat("job-test-", i, "/cpu");
      o.lease_wait = absl::Milliseconds(50);
      o.min_backoff = absl::Milliseconds(1);
      o.max_backoff = absl::Milliseconds(20);
      o.should_exit = [this, job_id] { return coordinator::JobFinished(*coordinator_, job_id); };
      loops.push_back(std::make_unique<WorkerLoop>(transports[i], std::move(o)));
    }
    for (auto& loop : loops) {
      threads.emplace_back([&loop] { EXPECT_THAT(loop->Run(), IsOk()); });
    }
    for (auto& t : threads) t.join();
    int64_t completed = 0;
    for (auto& loop : loops) {
      completed += loop->stats().completed;
      EXPECT_EQ(loop->stats().failed, 0);
    }
    EXPECT_EQ(completed, static_cast<int64_t>(Plan(Spec()).size()));
  }

  v1::Job GetJob(const std::string& job_id) {
    v1::GetJobRequest req;
    req.set_job_id(job_id);
    auto r = coordinator_->GetJob(req);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? r->job() : v1::Job();
  }

  pipeline::BlobMap Download(const v1::Job& job) {
    pipeline::BlobMap files;
    for (const v1::OutputFile& f : job.outputs()) {
      v1::DownloadArtifactRequest req;
      req.set_job_id(job.job_id());
      req.set_artifact_id(f.artifact().artifact_id());
      std::string& data = files[f.path()];
      EXPECT_THAT(coordinator_->DownloadArtifact(req,
                                                 [&](const v1::ArtifactStreamResponse& m) {
                                                   if (m.has_chunk()) data += m.chunk().data();
                                                   return true;
                                                 }),
                  IsOk());
    }
    return files;
  }

  void ExpectLocalRunnersCheckpoint(const std::string& job_id, const std::string& out_dir) {
    const v1::Job job = GetJob(job_id);
    ASSERT_EQ(job.phase(), v1::JOB_PHASE_SUCCEEDED) << job.error().message();
    // The coordinator resolves defaults at submit (an fp32 model is written
    // as fp16); the local runner gets the resolved choice.
    EXPECT_EQ(job.spec().quant().output_dtype(), "fp16");
    pipeline::LocalJob local_job = Job();
    local_job.quant.output_dtype = job.spec().quant().output_dtype();
    VPTQ_ASSERT_OK_AND_ASSIGN(pipeline::LocalJobResult local, pipeline::RunLocalJob(local_job));
    const pipeline::BlobMap downloaded = Download(job);
    EXPECT_EQ(downloaded.size(), local.checkpoint.files.size());
    for (const auto& [name, bytes] : local.checkpoint.files) {
      ASSERT_TRUE(downloaded.count(name)) << name;
      EXPECT_TRUE(downloaded.at(name) == bytes) << name << " differs";
    }
    VPTQ_ASSERT_OK_AND_ASSIGN(pipeline::BlobMap written, pipeline::ReadCheckpointDir(out_dir));
    EXPECT_TRUE(written == local.checkpoint.files);
    // Quality figures from the EVAL and ASSEMBLE summaries.
    ASSERT_TRUE(local.quality.has_value());
    EXPECT_TRUE(job.quality().evaluated());
    EXPECT_DOUBLE_EQ(job.quality().kl_divergence(), local.quality->kl_divergence);
    EXPECT_DOUBLE_EQ(job.quality().perplexity(), local.quality->perplexity);
    EXPECT_DOUBLE_EQ(job.quality().top1_agreement(), local.quality->top1_agreement);
    EXPECT_DOUBLE_EQ(job.quality().bits_per_weight(),
                     local.checkpoint.Metrics().at("bits_per_weight"));
    EXPECT_DOUBLE_EQ(job.quality().bits_per_weight_linears(),
                     local.checkpoint.Metrics().at("bits_per_weight_linears"));
    EXPECT_GT(job.quality().mean_proxy_loss(), 0);
  }

  std::unique_ptr<coordinator::Coordinator> coordinator_;
};

TEST_F(WorkerJobTest, TwoInProcessLoopsMatchTheLocalRunner) {
  v1::JobSpec spec = Spec();
  spec.set_output_dir(scratch_.Sub("out"));
  const std::string job_id = Submit(spec);
  ASSERT_FALSE(job_id.empty());
  auto transport = MakeInProcessWorkerTransport(coordinator_.get());
  RunLoops(job_id, {transport.get(), transport.get()});
  ExpectLocalRunnersCheckpoint(job_id, scratch_.Sub("out"));
}

TEST_F(WorkerJobTest, OneLoopOverGrpcMatchesTheLocalRunner) {
  coordinator::CoordinatorSlot slot;
  slot.Set(coordinator_.get());
  coordinator::WorkerServiceImpl service(&slot,
                                         coordinator::AuthTokens{kClientToken, kWorkerToken});
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(coordinator::kMaxReceiveMessageBytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  coordinator::ChannelOptions channel;
  channel.address = absl::StrCat("127.0.0.1:", port);
  channel.token = kWorkerToken;
  VPTQ_ASSERT_OK_AND_ASSIGN(auto transport, MakeGrpcWorkerTransport(channel));

  // The client token is refused on the worker service: Run() gives up.
  channel.token = kClientToken;
  VPTQ_ASSERT_OK_AND_ASSIGN(auto refused, MakeGrpcWorkerTransport(channel));
  WorkerLoopOptions o;
  o.worker_id = "refused/cpu";
  WorkerLoop refused_loop(refused.get(), o);
  EXPECT_THAT(refused_loop.Run(), ::vptq::testing::StatusIs(absl::StatusCode::kPermissionDenied));

  v1::JobSpec spec = Spec();
  spec.set_output_dir(scratch_.Sub("out"));
  const std::string job_id = Submit(spec);
  ASSERT_FALSE(job_id.empty());
  RunLoops(job_id, {transport.get()});
  server->Shutdown();
  slot.Set(nullptr);
  ExpectLocalRunnersCheckpoint(job_id, scratch_.Sub("out"));
}

}  // namespace
}  // namespace vptq::worker
