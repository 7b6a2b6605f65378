// libFuzzer target: validation of UploadFile's metadata frame
// (services/storage/file_metadata.h).
#include <cstddef>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "services/storage/file_metadata.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);

  const absl::Status name = parley::storage::ValidateFileName(in);
  parley::fuzz::CheckFieldError(name, "name");
  if (name.ok()) {
    FUZZ_CHECK(size >= 1 && size <= 255, "name length");
    for (char c : in) {
      const auto u = static_cast<unsigned char>(c);
      FUZZ_CHECK(c != '/' && c != '\\' && u >= 0x20 && u != 0x7F, "name characters");
    }
  }

  const absl::Status type = parley::storage::ValidateContentType(in);
  parley::fuzz::CheckFieldError(type, "content_type");
  if (type.ok()) {
    const size_t slash = in.find('/');
    FUZZ_CHECK(slash != absl::string_view::npos && slash > 0 && slash + 1 < size &&
                   in.find('/', slash + 1) == absl::string_view::npos,
               "exactly one slash between two non-empty names");
    for (char c : in) {
      FUZZ_CHECK(absl::ascii_isgraph(c), "content type is printable ASCII");
    }
  }

  const absl::Status sha = parley::storage::ValidateSha256Hex(in);
  parley::fuzz::CheckFieldError(sha, "sha256");
  if (sha.ok()) {
    FUZZ_CHECK(size == 64, "64 digits");
    for (char c : in) FUZZ_CHECK(absl::ascii_isxdigit(c), "hex digits");
  }
  return 0;
}
