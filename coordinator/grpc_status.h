// absl::Status <-> grpc::Status. The code numbers are the same; the message
// is carried as is. For the worker and CLI as much as for the coordinator.
//
//   return ToGrpcStatus(coordinator->CancelJob(request).status());
//   absl::Status s = FromGrpcStatus(stub->CancelJob(&ctx, request, &response));
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "vptq/v1/common.pb.h"

namespace vptq::coordinator {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);
v1::StatusProto ToStatusProto(const absl::Status& status);
absl::Status FromStatusProto(const v1::StatusProto& status);

}  // namespace vptq::coordinator
