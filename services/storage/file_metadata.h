// Validation of the metadata frame a client sends first in UploadFile.
// Every error is INVALID_ARGUMENT naming the field.
//
//   if (absl::Status s = ValidateContentType(m.content_type()); !s.ok()) ...
#ifndef PARLEY_SERVICES_STORAGE_FILE_METADATA_H_
#define PARLEY_SERVICES_STORAGE_FILE_METADATA_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace parley::storage {

// 1-255 bytes, no path separators, no C0 control characters or DEL.
absl::Status ValidateFileName(absl::string_view name);
// `type/subtype`, each an RFC 6838 restricted-name; at most 255 bytes.
absl::Status ValidateContentType(absl::string_view type);
// Exactly 64 hex digits (either case).
absl::Status ValidateSha256Hex(absl::string_view hex);

}  // namespace parley::storage

#endif  // PARLEY_SERVICES_STORAGE_FILE_METADATA_H_
