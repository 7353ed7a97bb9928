// ClientService / WorkerService over real gRPC on 127.0.0.1: bearer tokens,
// the recovering window, a whole job through the wire (client streams,
// server streams), and TLS with a self-signed certificate made at test time.
#include "coordinator/grpc_services.h"

#include <cstdlib>
#include <filesystem>
#include <thread>

#include <grpcpp/grpcpp.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/sha256.h"
#include "common/status.h"
#include "common/status_matchers.h"
#include "coordinator/grpc_status.h"
#include "coordinator/memory_job_store.h"
#include "coordinator/test_util.h"

namespace vptq::coordinator {
namespace {

namespace fs = std::filesystem;
using ::vptq::testing::IsOk;

constexpr char kClientToken[] = "client-secret-0123456789";
constexpr char kWorkerToken[] = "worker-secret-0123456789";

class GrpcServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::canonical(MakeTempDir("grpc")).string();
    fs::create_directories(base_ + "/models/tiny");
    ASSERT_THAT(WriteTinyLlama(base_ + "/models/tiny"), IsOk());
    ASSERT_THAT(WriteTestFile(base_ + "/models/cal.txt", "text"), IsOk());
    config_.add_input_roots(base_ + "/models");
    tokens_ = AuthTokens{kClientToken, kWorkerToken, false};
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    slot_.Set(nullptr);
    coordinator_.reset();
    fs::remove_all(base_);
  }

  void StartServer(std::shared_ptr<grpc::ServerCredentials> creds, bool with_engine = true) {
    if (with_engine) {
      CoordinatorOptions o;
      o.config = config_;
      auto c = Coordinator::Open(std::make_unique<MemoryJobStore>(), o);
      ASSERT_THAT(c, IsOk());
      coordinator_ = std::move(*c);
      slot_.Set(coordinator_.get());
    }
    clients_ = std::make_unique<ClientServiceImpl>(&slot_, tokens_);
    workers_ = std::make_unique<WorkerServiceImpl>(&slot_, tokens_);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", creds, &port_);
    b.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
    b.RegisterService(clients_.get());
    b.RegisterService(workers_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  std::shared_ptr<grpc::Channel> Channel(std::shared_ptr<grpc::ChannelCredentials> creds =
                                             grpc::InsecureChannelCredentials(),
                                         const grpc::ChannelArguments& args = {}) {
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_), creds, args);
  }

  static void Auth(grpc::ClientContext* ctx, const std::string& token) {
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  }

  v1::JobSpec Spec() {
    v1::JobSpec s;
    s.mutable_model()->set_path(base_ + "/models/tiny");
    s.mutable_calibration()->add_text_paths(base_ + "/models/cal.txt");
    s.mutable_calibration()->set_num_sequences(2);
    s.mutable_calibration()->set_num_shards(1);
    s.mutable_quant()->set_bits(2);
    return s;
  }

  std::string base_;
  v1::CoordinatorConfig config_;
  AuthTokens tokens_;
  CoordinatorSlot slot_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<ClientServiceImpl> clients_;
  std::unique_ptr<WorkerServiceImpl> workers_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(GrpcServicesTest, TokensSeparateClientsFromWorkers) {
  StartServer(grpc::InsecureServerCredentials());
  auto ch = Channel();
  auto client = v1::ClientService::NewStub(ch);
  auto worker = v1::WorkerService::NewStub(ch);
  struct Case {
    std::string token;
    grpc::StatusCode client_code, worker_code;
  };
  for (const Case& c : {Case{"", grpc::UNAUTHENTICATED, grpc::UNAUTHENTICATED},
                        Case{"wrong-token-0123456789", grpc::UNAUTHENTICATED, grpc::UNAUTHENTICATED},
                        Case{kClientToken, grpc::OK, grpc::PERMISSION_DENIED},
                        Case{kWorkerToken, grpc::PERMISSION_DENIED, grpc::OK}}) {
    grpc::ClientContext cctx;
    Auth(&cctx, c.token);
    v1::ListJobsResponse list;
    EXPECT_EQ(client->ListJobs(&cctx, v1::ListJobsRequest(), &list).error_code(), c.client_code)
        << c.token;
    grpc::ClientContext wctx;
    Auth(&wctx, c.token);
    v1::LeaseTaskRequest lease;
    lease.set_worker_id("w");
    v1::LeaseTaskResponse got;
    EXPECT_EQ(worker->LeaseTask(&wctx, lease, &got).error_code(), c.worker_code) << c.token;
    // Streaming calls are guarded too.
    grpc::ClientContext sctx;
    Auth(&sctx, c.token);
    v1::WatchJobRequest w;
    w.set_job_id("job-x");
    auto reader = client->WatchJob(&sctx, w);
    v1::WatchJobResponse ev;
    while (reader->Read(&ev)) {
    }
    grpc::Status st = reader->Finish();
    EXPECT_EQ(st.error_code(), c.client_code == grpc::OK ? grpc::NOT_FOUND : c.client_code);
  }
}

TEST_F(GrpcServicesTest, UnavailableWhileRecovering) {
  StartServer(grpc::InsecureServerCredentials(), /*with_engine=*/false);
  auto client = v1::ClientService::NewStub(Channel());
  grpc::ClientContext ctx;
  Auth(&ctx, kClientToken);
  v1::ListJobsResponse list;
  grpc::Status s = client->ListJobs(&ctx, v1::ListJobsRequest(), &list);
  EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("recovering"));
}

TEST_F(GrpcServicesTest, WholeJobOverTheWire) {
  StartServer(grpc::InsecureServerCredentials());
  auto ch = Channel();
  auto client = v1::ClientService::NewStub(ch);
  auto worker = v1::WorkerService::NewStub(ch);

  v1::SubmitJobRequest submit;
  *submit.mutable_spec() = Spec();
  v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, kClientToken);
    ASSERT_TRUE(client->SubmitJob(&ctx, submit, &submitted).ok());
  }
  const std::string job_id = submitted.job_id();

  std::vector<v1::JobEvent> events;
  grpc::Status watch_status;
  std::thread watcher([&] {
    grpc::ClientContext ctx;
    Auth(&ctx, kClientToken);
    v1::WatchJobRequest req;
    req.set_job_id(job_id);
    auto reader = client->WatchJob(&ctx, req);
    v1::WatchJobResponse r;
    while (reader->Read(&r)) events.push_back(r.event());
    watch_status = reader->Finish();
  });

  int done = 0;
  while (true) {
    grpc::ClientContext ctx;
    Auth(&ctx, kWorkerToken);
    v1::LeaseTaskRequest lease;
    lease.set_worker_id("wire-worker");
    lease.mutable_capabilities()->set_device_kind(v1::DEVICE_KIND_CPU);
    lease.set_max_wait_ms(50);
    v1::LeaseTaskResponse got;
    ASSERT_TRUE(worker->LeaseTask(&ctx, lease, &got).ok());
    if (!got.has_task()) break;
    const v1::TaskAssignment& t = got.task();
    // Inputs come through FetchArtifact and match their checksums.
    for (const auto& in : t.inputs()) {
      grpc::ClientContext fctx;
      Auth(&fctx, kWorkerToken);
      v1::DownloadArtifactRequest f;
      f.set_artifact_id(in.artifact().artifact_id());
      auto reader = worker->FetchArtifact(&fctx, f);
      v1::ArtifactStreamResponse part;
      std::string data;
      while (reader->Read(&part)) {
        if (part.has_chunk()) data += part.chunk().data();
      }
      ASSERT_TRUE(reader->Finish().ok());
      EXPECT_EQ(Sha256Hex(data), in.artifact().sha256()) << in.name();
    }
    std::vector<std::pair<std::string, std::string>> outputs;
    for (const auto& name : t.required_outputs()) outputs.emplace_back(name, "out:" + name);
    if (t.kind() == v1::TASK_KIND_ASSEMBLE) {
      outputs.emplace_back("model.safetensors", std::string(3 << 20, 'w'));  // several chunks
    }
    grpc::ClientContext cctx;
    Auth(&cctx, kWorkerToken);
    v1::CompleteTaskResponse completed;
    auto writer = worker->CompleteTask(&cctx, &completed);
    for (const auto& m : MakeCompleteTaskStream("wire-worker", t, outputs, {})) {
      ASSERT_TRUE(writer->Write(m));
    }
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    ASSERT_TRUE(st.ok()) << st.error_message();
    ++done;
  }
  watcher.join();
  EXPECT_EQ(done, 1 + 8 + 14 + 1);
  ASSERT_TRUE(watch_status.ok()) << watch_status.error_message();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type(), v1::EVENT_TYPE_JOB_SUCCEEDED);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].sequence(), int64_t(i) + 1);

  v1::GetJobRequest get;
  get.set_job_id(job_id);
  v1::GetJobResponse job;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, kClientToken);
    ASSERT_TRUE(client->GetJob(&ctx, get, &job).ok());
  }
  ASSERT_EQ(job.job().outputs_size(), 2);
  const v1::ArtifactRef& weights = job.job().outputs(1).artifact();
  EXPECT_EQ(job.job().outputs(1).path(), "model.safetensors");
  grpc::ClientContext dctx;
  Auth(&dctx, kClientToken);
  v1::DownloadArtifactRequest d;
  d.set_job_id(job_id);
  d.set_artifact_id(weights.artifact_id());
  d.set_offset(1000);
  auto reader = client->DownloadArtifact(&dctx, d);
  v1::ArtifactStreamResponse part;
  std::string data;
  v1::ArtifactRef info;
  while (reader->Read(&part)) {
    if (part.has_info()) info = part.info();
    if (part.has_chunk()) data += part.chunk().data();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(info.sha256(), Sha256Hex(std::string(3 << 20, 'w')));
  EXPECT_EQ(data, std::string((3 << 20) - 1000, 'w'));
}

TEST_F(GrpcServicesTest, TlsWithSelfSignedCertificate) {
  const std::string cert = base_ + "/tls.crt", key = base_ + "/tls.key";
  const std::string cmd = absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout ",
      key, " -out ", cert, " >/dev/null 2>&1");
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl cannot make a certificate here";
  v1::TlsConfig tls;
  tls.set_cert_path(cert);
  tls.set_key_path(key);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto creds, MakeServerCredentials(tls));
  StartServer(creds);

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadTestFile(cert);
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto secure = v1::ClientService::NewStub(Channel(grpc::SslCredentials(ssl), args));
  grpc::ClientContext ctx;
  Auth(&ctx, kClientToken);
  v1::ListJobsResponse list;
  grpc::Status s = secure->ListJobs(&ctx, v1::ListJobsRequest(), &list);
  EXPECT_TRUE(s.ok()) << s.error_message();

  auto plain = v1::ClientService::NewStub(Channel());
  grpc::ClientContext pctx;
  Auth(&pctx, kClientToken);
  pctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  EXPECT_FALSE(plain->ListJobs(&pctx, v1::ListJobsRequest(), &list).ok());

  v1::TlsConfig bad;
  bad.set_cert_path(base_ + "/missing.crt");
  bad.set_key_path(key);
  EXPECT_FALSE(MakeServerCredentials(bad).ok());
}

TEST(GrpcStatusTest, RoundTrips) {
  absl::Status s = absl::ResourceExhaustedError("OOM on cuda:0");
  EXPECT_EQ(FromGrpcStatus(ToGrpcStatus(s)), s);
  EXPECT_EQ(FromStatusProto(ToStatusProto(s)), s);
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace vptq::coordinator
