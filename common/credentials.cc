#include "common/credentials.h"

#include <sodium.h>

#include <cstdlib>

#include "absl/strings/match.h"

namespace parley {
namespace {

constexpr absl::string_view kTokenPrefix = "plt_";
constexpr size_t kTokenBytes = 32;

void EnsureSodium() {
  static const bool ok = [] { return sodium_init() >= 0; }();
  if (!ok) std::abort();
}

size_t EncodedTokenLength() {
  return kTokenPrefix.size() +
         sodium_base64_ENCODED_LEN(kTokenBytes,
                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING) -
         1;
}

}  // namespace

std::string GenerateAccessToken() {
  EnsureSodium();
  unsigned char raw[kTokenBytes];
  randombytes_buf(raw, sizeof raw);
  char encoded[sodium_base64_ENCODED_LEN(
      kTokenBytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(encoded, sizeof encoded, raw, sizeof raw,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
  return std::string(kTokenPrefix) + encoded;
}

std::string HashAccessToken(absl::string_view token) {
  EnsureSodium();
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(token.data()),
                     token.size());
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

bool IsWellFormedAccessToken(absl::string_view token) {
  if (token.size() != EncodedTokenLength() ||
      !absl::StartsWith(token, kTokenPrefix)) {
    return false;
  }
  for (char c : token.substr(kTokenPrefix.size())) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<std::string> ParseBearer(absl::string_view header) {
  constexpr absl::string_view kScheme = "Bearer ";
  if (header.empty()) {
    return absl::UnauthenticatedError("authorization metadata is missing");
  }
  if (header.size() <= kScheme.size() ||
      !absl::StartsWithIgnoreCase(header, kScheme)) {
    return absl::UnauthenticatedError(
        "authorization metadata must be 'Bearer <access_token>'");
  }
  absl::string_view token = header.substr(kScheme.size());
  if (!IsWellFormedAccessToken(token)) {
    return absl::UnauthenticatedError("access token is invalid");
  }
  return std::string(token);
}

absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         const PasswordHashCost& cost) {
  EnsureSodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), cost.ops_limit,
                        cost.mem_limit_bytes) != 0) {
    return absl::ResourceExhaustedError("password hashing ran out of memory");
  }
  return std::string(out);
}

bool VerifyPassword(absl::string_view hash, absl::string_view password) {
  EnsureSodium();
  if (hash.size() >= crypto_pwhash_STRBYTES) return false;
  char buf[crypto_pwhash_STRBYTES] = {0};
  hash.copy(buf, hash.size());
  return crypto_pwhash_str_verify(buf, password.data(), password.size()) == 0;
}

}  // namespace parley
