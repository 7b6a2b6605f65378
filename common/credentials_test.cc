#include "common/credentials.h"

#include <set>

#include "gtest/gtest.h"

namespace parley {
namespace {

TEST(CredentialsTest, TokensAreRandomAndWellFormed) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string t = GenerateAccessToken();
    EXPECT_TRUE(IsWellFormedAccessToken(t)) << t;
    EXPECT_EQ(t.size(), 47u);
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(CredentialsTest, MalformedTokens) {
  const std::string t = GenerateAccessToken();
  EXPECT_FALSE(IsWellFormedAccessToken(""));
  EXPECT_FALSE(IsWellFormedAccessToken(t.substr(1)));
  EXPECT_FALSE(IsWellFormedAccessToken(t + "a"));
  std::string bad = t;
  bad[10] = '!';
  EXPECT_FALSE(IsWellFormedAccessToken(bad));
  EXPECT_FALSE(IsWellFormedAccessToken("xyz_" + t.substr(4)));
}

TEST(CredentialsTest, HashIsSha256AndStable) {
  const std::string t = GenerateAccessToken();
  EXPECT_EQ(HashAccessToken(t).size(), 32u);
  EXPECT_EQ(HashAccessToken(t), HashAccessToken(t));
  EXPECT_NE(HashAccessToken(t), HashAccessToken(GenerateAccessToken()));
  // SHA-256("abc").
  EXPECT_EQ(HashAccessToken("abc").substr(0, 4), std::string("\xba\x78\x16\xbf"));
}

TEST(CredentialsTest, ParseBearer) {
  const std::string t = GenerateAccessToken();
  EXPECT_EQ(*ParseBearer("Bearer " + t), t);
  EXPECT_EQ(*ParseBearer("bearer " + t), t);
  EXPECT_EQ(ParseBearer("").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ParseBearer(t).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ParseBearer("Basic " + t).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ParseBearer("Bearer garbage").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(CredentialsTest, PasswordHashRoundTrip) {
  PasswordHashCost cheap{.ops_limit = 1, .mem_limit_bytes = 8192};
  auto hash = HashPassword("correct horse battery", cheap);
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->rfind("$argon2id$", 0), 0u);
  EXPECT_EQ(hash->find("correct horse"), std::string::npos);
  EXPECT_TRUE(VerifyPassword(*hash, "correct horse battery"));
  EXPECT_FALSE(VerifyPassword(*hash, "correct horse batterY"));
  EXPECT_FALSE(VerifyPassword("", "x"));
  EXPECT_FALSE(VerifyPassword("garbage", "correct horse battery"));
  // Salted: the same password hashes differently each time.
  EXPECT_NE(*hash, *HashPassword("correct horse battery", cheap));
}

TEST(CredentialsTest, DefaultCostIsArgon2idInteractive) {
  auto hash = HashPassword("password1", PasswordHashCost{});
  ASSERT_TRUE(hash.ok());
  EXPECT_NE(hash->find("m=65536,t=2"), std::string::npos) << *hash;
}

}  // namespace
}  // namespace parley
