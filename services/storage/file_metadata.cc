#include "services/storage/file_metadata.h"

#include "absl/strings/ascii.h"
#include "services/storage/blob_store.h"

namespace parley::storage {
namespace {

// An RFC 6838 restricted-name: 1-127 characters, the first alphanumeric.
bool IsRestrictedName(absl::string_view s) {
  if (s.empty() || s.size() > 127 || !absl::ascii_isalnum(s[0])) return false;
  for (char c : s) {
    if (absl::ascii_isalnum(c)) continue;
    switch (c) {
      case '!': case '#': case '$': case '&': case '-': case '^': case '_':
      case '.': case '+':
        continue;
      default:
        return false;
    }
  }
  return true;
}

}  // namespace

absl::Status ValidateFileName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxFileNameBytes) {
    return absl::InvalidArgumentError("name: must be 1-255 bytes");
  }
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '/' || c == '\\') {
      return absl::InvalidArgumentError(
          "name: must not contain path separators");
    }
    if (u < 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(
          "name: must not contain control characters");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateContentType(absl::string_view type) {
  const size_t slash = type.find('/');
  if (type.size() > kMaxContentTypeBytes || slash == absl::string_view::npos ||
      !IsRestrictedName(type.substr(0, slash)) ||
      !IsRestrictedName(type.substr(slash + 1))) {
    return absl::InvalidArgumentError(
        "content_type: must be a MIME type of the form type/subtype");
  }
  return absl::OkStatus();
}

absl::Status ValidateSha256Hex(absl::string_view hex) {
  if (hex.size() != 64) {
    return absl::InvalidArgumentError("sha256: must be 64 hex digits");
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(c)) {
      return absl::InvalidArgumentError("sha256: must be 64 hex digits");
    }
  }
  return absl::OkStatus();
}

}  // namespace parley::storage
