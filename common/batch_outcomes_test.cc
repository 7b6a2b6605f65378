#include "common/batch_outcomes.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace parley {
namespace {

using Results = std::vector<absl::StatusOr<std::string>>;

TEST(BatchOutcomesTest, CheckBatchSizeNamesTheField) {
  EXPECT_TRUE(CheckBatchSize(0).ok());
  EXPECT_TRUE(CheckBatchSize(kMaxBatchRequests).ok());
  absl::Status s = CheckBatchSize(kMaxBatchRequests + 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::StartsWith("requests:"));
}

TEST(BatchOutcomesTest, GatherAnswersOnceAllItemsHaveInAnyOrder) {
  std::vector<Results> finished;
  auto answer = GatherResults<std::string>(3, [&](BatchResults<std::string> r) {
    finished.push_back(std::move(*r));
  });
  answer(2, std::string("c"));
  answer(0, std::string("a"));
  EXPECT_TRUE(finished.empty());
  answer(1, absl::NotFoundError("gone"));
  ASSERT_EQ(finished.size(), 1u);
  ASSERT_EQ(finished[0].size(), 3u);
  EXPECT_EQ(*finished[0][0], "a");
  EXPECT_EQ(finished[0][1].status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*finished[0][2], "c");

  int empty_finished = 0;
  GatherResults<std::string>(0, [&](BatchResults<std::string> r) {
    EXPECT_TRUE(r.ok() && r->empty());
    ++empty_finished;
  });
  EXPECT_EQ(empty_finished, 1);
}

}  // namespace
}  // namespace parley
