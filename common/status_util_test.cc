#include "common/status_util.h"

#include "gtest/gtest.h"

namespace parley {
namespace {

TEST(StatusUtilTest, CodesAndMessagesMapOneToOne) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  const grpc::Status g = ToGrpcStatus(absl::NotFoundError("chat_id: unknown"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(g.error_message(), "chat_id: unknown");
  EXPECT_EQ(ToGrpcStatus(absl::PermissionDeniedError("x")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("x")).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(StatusUtilTest, DownstreamTimeoutsBecomeUnavailable) {
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                        "slow"))
                .code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "d"))
                .code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(StatusUtilTest, RateLimitedErrorCarriesItsDelay) {
  const absl::Status s =
      RateLimitedError("send", std::chrono::milliseconds(120));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "send rate exceeded; retry after 120 ms");
  ASSERT_TRUE(RetryAfter(s).has_value());
  EXPECT_EQ(*RetryAfter(s), std::chrono::milliseconds(120));
  EXPECT_FALSE(RetryAfter(absl::ResourceExhaustedError("full")).has_value());
  // Code and message reach the wire unchanged.
  const grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(g.error_message(), "send rate exceeded; retry after 120 ms");
}

TEST(StatusUtilTest, OverloadedErrorCarriesItsDelay) {
  const absl::Status s = OverloadedError("gateway overloaded",
                                         std::chrono::milliseconds(100));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "gateway overloaded; retry after 100 ms");
  ASSERT_TRUE(RetryAfter(s).has_value());
  EXPECT_EQ(*RetryAfter(s), std::chrono::milliseconds(100));
}

}  // namespace
}  // namespace parley
