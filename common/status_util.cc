#include "common/status_util.h"

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace parley {
namespace {

// Where RateLimitedError keeps its delay (decimal milliseconds).
constexpr char kRetryAfterPayload[] = "type.parley.dev/retry-after-ms";

std::optional<std::chrono::milliseconds> ParseMillis(absl::string_view s) {
  int64_t ms = 0;
  if (!absl::SimpleAtoi(s, &ms) || ms < 0) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

grpc::Status ToGrpcStatus(const absl::Status& status,
                          grpc::ServerContextBase* ctx) {
  if (auto retry = status.GetPayload(kRetryAfterPayload); retry.has_value()) {
    ctx->AddTrailingMetadata(kRetryAfterMetadata, std::string(*retry));
  }
  return ToGrpcStatus(status);
}

absl::Status RateLimitedError(absl::string_view what,
                              std::chrono::milliseconds retry_after) {
  return OverloadedError(absl::StrCat(what, " rate exceeded"), retry_after);
}

absl::Status OverloadedError(absl::string_view what,
                             std::chrono::milliseconds retry_after) {
  const std::string ms = absl::StrCat(retry_after.count());
  absl::Status s = absl::ResourceExhaustedError(
      absl::StrCat(what, "; retry after ", ms, " ms"));
  s.SetPayload(kRetryAfterPayload, absl::Cord(ms));
  return s;
}

std::optional<std::chrono::milliseconds> RetryAfter(const absl::Status& status) {
  auto retry = status.GetPayload(kRetryAfterPayload);
  if (!retry.has_value()) return std::nullopt;
  return ParseMillis(std::string(*retry));
}

std::optional<std::chrono::milliseconds> RetryAfter(
    const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find(kRetryAfterMetadata);
  if (it == trailers.end()) return std::nullopt;
  return ParseMillis(absl::string_view(it->second.data(), it->second.size()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  switch (status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      return absl::UnavailableError("dependency did not answer in time: " +
                                    status.error_message());
    default:
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
  }
}

}  // namespace parley
