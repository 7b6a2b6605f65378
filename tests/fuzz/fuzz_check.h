// A check for libFuzzer targets: on failure it prints the condition and
// aborts, which libFuzzer reports as a crash and saves the input.
//
//   FUZZ_CHECK(id > 0, "ParseId accepted a non-positive id");
#ifndef PARLEY_TESTS_FUZZ_FUZZ_CHECK_H_
#define PARLEY_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

#define FUZZ_CHECK(cond, what)                                         \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, \
                   __LINE__, #cond, what);                             \
      std::abort();                                                    \
    }                                                                  \
  } while (0)

namespace parley::fuzz {

// A validation error is INVALID_ARGUMENT and its message starts with the
// offending field's name.
inline void CheckFieldError(const absl::Status& s, absl::string_view field) {
  if (s.ok()) return;
  FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, "not INVALID_ARGUMENT");
  FUZZ_CHECK(absl::StartsWith(s.message(), field), "error does not name the field");
}

}  // namespace parley::fuzz

#endif  // PARLEY_TESTS_FUZZ_FUZZ_CHECK_H_
