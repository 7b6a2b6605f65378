// Access tokens and password hashes.
//
//   std::string token = parley::GenerateAccessToken();   // give to client
//   std::string key = parley::HashAccessToken(token);    // store this
//   auto hash = parley::HashPassword("correct horse", PasswordHashCost{});
//   bool ok = parley::VerifyPassword(*hash, "correct horse");
#ifndef PARLEY_COMMON_CREDENTIALS_H_
#define PARLEY_COMMON_CREDENTIALS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace parley {

// argon2id cost; the defaults are libsodium's "interactive" limits.
struct PasswordHashCost {
  uint64_t ops_limit = 2;
  size_t mem_limit_bytes = 64u << 20;
};

// A new random token: "plt_" followed by 43 base64url characters (256 bits).
std::string GenerateAccessToken();
// SHA-256 of a token (32 raw bytes): what storage keeps instead of the token.
std::string HashAccessToken(absl::string_view token);
// True if `token` has the shape GenerateAccessToken produces.
bool IsWellFormedAccessToken(absl::string_view token);
// Extracts the token from an `authorization` metadata value
// ("Bearer <token>"); UNAUTHENTICATED otherwise.
absl::StatusOr<std::string> ParseBearer(absl::string_view header);

// argon2id via crypto_pwhash_str; RESOURCE_EXHAUSTED if memory runs out.
absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         const PasswordHashCost& cost);
bool VerifyPassword(absl::string_view hash, absl::string_view password);

}  // namespace parley

#endif  // PARLEY_COMMON_CREDENTIALS_H_
