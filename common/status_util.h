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

#include <chrono>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace grpc {
class ClientContext;
class ServerContextBase;
}  // namespace grpc

namespace parley {

// Trailing metadata of a call refused by a rate limit: the whole number of
// milliseconds after which the same call is expected to pass.
inline constexpr char kRetryAfterMetadata[] = "retry-after-ms";

// Converts an internal status to the status sent on the wire. Codes map
// one-to-one; the message is kept, since internal messages never carry
// secrets or message text.
grpc::Status ToGrpcStatus(const absl::Status& status);
// The same, for a server call: what the status carries for the client
// beyond code and message (the retry delay of RateLimitedError) goes into
// `ctx`'s trailing metadata. Call before finishing the call.
grpc::Status ToGrpcStatus(const absl::Status& status,
                          grpc::ServerContextBase* ctx);

// RESOURCE_EXHAUSTED "<what> rate exceeded; retry after N ms", carrying N
// for ToGrpcStatus(status, ctx) to send as `retry-after-ms`.
absl::Status RateLimitedError(absl::string_view what,
                              std::chrono::milliseconds retry_after);
// RESOURCE_EXHAUSTED "<what>; retry after N ms" for a server shedding load,
// carrying N the same way as RateLimitedError.
absl::Status OverloadedError(absl::string_view what,
                             std::chrono::milliseconds retry_after);
// The retry delay a status from RateLimitedError or OverloadedError carries.
std::optional<std::chrono::milliseconds> RetryAfter(const absl::Status& status);
// The `retry-after-ms` trailer of a finished client call, if any.
std::optional<std::chrono::milliseconds> RetryAfter(
    const grpc::ClientContext& ctx);

// Converts a status received from another service. DEADLINE_EXCEEDED and
// CANCELLED from a downstream call are reported as UNAVAILABLE so that a
// client never mistakes a dependency failure for its own deadline.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace parley

#endif  // PARLEY_COMMON_STATUS_UTIL_H_
