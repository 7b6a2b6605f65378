// grpc.health.v1.Health/Check without health.proto (Debian does not ship it):
// the request and response are encoded by hand and sent with GenericStub.
//
//   absl::StatusOr<HealthStatus> s = CheckHealth("127.0.0.1:50051", "", 2s);
//   bool serving = s.ok() && *s == HealthStatus::kServing;
#ifndef PARLEY_SERVICES_CLIENT_HEALTH_CHECK_H_
#define PARLEY_SERVICES_CLIENT_HEALTH_CHECK_H_

#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/grpc_util.h"

namespace parley::client {

// HealthCheckResponse.ServingStatus.
enum class HealthStatus {
  kUnknown = 0,
  kServing = 1,
  kNotServing = 2,
  kServiceUnknown = 3,
};

// "SERVING", "NOT_SERVING", ...
std::string HealthStatusName(HealthStatus status);

// HealthCheckRequest{string service = 1}; empty service -> empty message.
std::string EncodeHealthCheckRequest(absl::string_view service);

// Parses HealthCheckResponse{ServingStatus status = 1}, skipping unknown
// fields. INVALID_ARGUMENT on malformed bytes.
absl::StatusOr<HealthStatus> DecodeHealthCheckResponse(absl::string_view bytes);

// Calls grpc.health.v1.Health/Check on `target` with the given deadline.
// The RPC's own failure (e.g. UNAVAILABLE, NOT_FOUND for an unknown service)
// is returned as an error status. `tls` secures the channel.
absl::StatusOr<HealthStatus> CheckHealth(
    const std::string& target, const std::string& service,
    std::chrono::milliseconds timeout,
    const TlsCredentials& tls = TlsCredentials());

}  // namespace parley::client

#endif  // PARLEY_SERVICES_CLIENT_HEALTH_CHECK_H_
