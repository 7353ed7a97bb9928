// Text-proto parsing with errors that name the file, line and column
// (job spec files for `vptqctl submit`, the coordinator's --config).
//
//   v1::JobSpec spec;
//   VPTQ_RETURN_IF_ERROR(ParseTextProto(text, "job.textproto", &spec));
//
// INVALID_ARGUMENT on any syntax error or unknown field. Thread-safe.
#pragma once

#include <string>

#include <google/protobuf/message.h>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"

namespace vptq::coordinator {

absl::Status ParseTextProto(absl::string_view text, absl::string_view source,
                            google::protobuf::Message* out);
// Reads and parses a file; NOT_FOUND when missing.
absl::Status ReadTextProtoFile(const std::string& path, google::protobuf::Message* out);

}  // namespace vptq::coordinator
