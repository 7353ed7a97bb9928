#include "coordinator/grpc_status.h"

namespace vptq::coordinator {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

v1::StatusProto ToStatusProto(const absl::Status& status) {
  v1::StatusProto p;
  p.set_code(static_cast<int32_t>(status.code()));
  p.set_message(std::string(status.message()));
  return p;
}

absl::Status FromStatusProto(const v1::StatusProto& status) {
  if (status.code() == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.code()), status.message());
}

}  // namespace vptq::coordinator
