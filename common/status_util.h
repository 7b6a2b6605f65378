// The one place where internal absl::Status and gRPC status meet.
//
//   absl::Status s = repo.Append(...);
//   reactor->Finish(parley::ToGrpcStatus(s));
//
//   grpc::Status g = stub->Call(&ctx, req, &resp);
//   if (!g.ok()) return parley::FromGrpcStatus(g);
#ifndef PARLEY_COMMON_STATUS_UTIL_H_
#define PARLEY_COMMON_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace parley {

// Converts an internal status to the status sent on the wire. Codes map
// one-to-one; the message is kept, since internal messages never carry
// secrets or message text.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Converts a status received from another service. DEADLINE_EXCEEDED and
// CANCELLED from a downstream call are reported as UNAVAILABLE so that a
// client never mistakes a dependency failure for its own deadline.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace parley

#endif  // PARLEY_COMMON_STATUS_UTIL_H_
