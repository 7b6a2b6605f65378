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

}  // namespace
}  // namespace parley
