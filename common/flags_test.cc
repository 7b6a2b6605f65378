#include "common/flags.h"

#include <map>
#include <string>

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, flags_test_number, 0, "A flag for the tests.");

namespace parley {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseAddressListTest, DropsBlanksAroundEntriesAndEmptyEntries) {
  EXPECT_THAT(ParseAddressList("a:1, b:2 ,,\tc:3,"),
              ElementsAre("a:1", "b:2", "c:3"));
  EXPECT_THAT(ParseAddressList("127.0.0.1:50052"), ElementsAre("127.0.0.1:50052"));
  EXPECT_TRUE(ParseAddressList(" , ,").empty());
}

TEST(ApplyEnvironmentFallbacksTest, SetsFlagsAndNamesTheBadVariable) {
  std::map<std::string, std::string> env = {{"PARLEY_FLAGS_TEST_NUMBER", "42"}};
  auto getenv = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  ASSERT_TRUE(ApplyEnvironmentFallbacks(getenv).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_flags_test_number), 42);

  env["PARLEY_FLAGS_TEST_NUMBER"] = "forty-two";
  absl::Status s = ApplyEnvironmentFallbacks(getenv);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("PARLEY_FLAGS_TEST_NUMBER"));
}

}  // namespace
}  // namespace parley
