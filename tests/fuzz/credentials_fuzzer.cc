// libFuzzer target: the `authorization` metadata parser and the access token
// shape check of common/credentials.h.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "common/credentials.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);

  const bool well_formed = parley::IsWellFormedAccessToken(in);
  if (well_formed) {
    FUZZ_CHECK(size == 47 && absl::StartsWith(in, "plt_"), "token shape");
    for (char c : in.substr(4)) {
      FUZZ_CHECK(absl::ascii_isalnum(c) || c == '-' || c == '_', "token alphabet");
    }
  }

  auto token = parley::ParseBearer(in);
  if (token.ok()) {
    FUZZ_CHECK(parley::IsWellFormedAccessToken(*token), "accepted a malformed token");
    FUZZ_CHECK(size == 7 + token->size() && in.substr(7) == *token,
               "the token is the rest of the header");
    FUZZ_CHECK(absl::EqualsIgnoreCase(in.substr(0, 7), "Bearer "), "scheme");
  } else {
    FUZZ_CHECK(token.status().code() == absl::StatusCode::kUnauthenticated,
               "a bad header is UNAUTHENTICATED");
  }
  // A token behind the scheme parses exactly when it is well-formed.
  auto with_scheme = parley::ParseBearer(std::string("Bearer ") + std::string(in));
  FUZZ_CHECK(with_scheme.ok() == well_formed, "Bearer <token> parses iff well-formed");

  FUZZ_CHECK(parley::HashAccessToken(in).size() == 32, "SHA-256 size");
  return 0;
}
