// Status helpers of the command-line client.
#ifndef PARLEY_SERVICES_CLIENT_CLIENT_STATUS_H_
#define PARLEY_SERVICES_CLIENT_CLIENT_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace parley::client {

// The status a call returned, code and message unchanged. (Unlike
// parley::FromGrpcStatus, which is meant for service-to-service calls, a
// client's own DEADLINE_EXCEEDED stays DEADLINE_EXCEEDED.)
absl::Status StatusFromGrpc(const grpc::Status& status);

// "error: NOT_FOUND: chat 12 not found" (no trailing newline).
std::string FormatError(const absl::Status& status);

}  // namespace parley::client

#endif  // PARLEY_SERVICES_CLIENT_CLIENT_STATUS_H_
