// Validation of client input. Every error is INVALID_ARGUMENT and its message
// starts with the offending field's name, e.g. "username: must be ...".
//
//   if (auto s = parley::ValidateUsername(req.username()); !s.ok()) return s;
//   ASSIGN_OR_RETURN(int64_t chat_id, parley::ParseId("chat_id", req.chat_id()));
#ifndef PARLEY_COMMON_VALIDATION_H_
#define PARLEY_COMMON_VALIDATION_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace parley {

inline constexpr size_t kMaxTextBytes = 16 * 1024;
inline constexpr size_t kMaxClientMessageIdChars = 64;
inline constexpr size_t kMaxTitleChars = 200;
inline constexpr size_t kMaxEmojiBytes = 32;
inline constexpr size_t kMaxDisplayNameChars = 64;
inline constexpr size_t kMinPasswordChars = 8;
// Longer passwords are refused rather than hashed, so that a client cannot
// make the server hash megabytes.
inline constexpr size_t kMaxPasswordBytes = 1024;
inline constexpr int32_t kDefaultPageSize = 50;
inline constexpr int32_t kMaxPageSize = 500;

// True for well-formed UTF-8: no overlong forms, no surrogates, <= U+10FFFF.
bool IsValidUtf8(absl::string_view s);
// Number of code points in valid UTF-8.
size_t Utf8Length(absl::string_view s);
// True if `s` (valid UTF-8) has a C0 or C1 control character or DEL.
bool HasControlCharacter(absl::string_view s);

absl::Status ValidateUsername(absl::string_view username);
absl::Status ValidatePassword(absl::string_view password);
// Returns the display name to store: `username` when empty.
absl::StatusOr<std::string> NormalizeDisplayName(absl::string_view display_name,
                                                 absl::string_view username);
// 1 to `max_bytes` (default 16 KiB) bytes of valid UTF-8 with no NUL. With
// `required` false an empty text is accepted (a file message).
absl::Status ValidateMessageText(absl::string_view text, bool required = true,
                                 size_t max_bytes = kMaxTextBytes);
absl::Status ValidateClientMessageId(absl::string_view id);
absl::Status ValidateGroupTitle(absl::string_view title);
// One emoji: at most 32 bytes of UTF-8, no whitespace or control characters,
// and either an RGI emoji sequence (Unicode's recommended-for-general-
// interchange set: keycaps, flags, modifiers, ZWJ sequences) or a single
// non-ASCII code point with the Emoji property.
absl::Status ValidateEmoji(absl::string_view emoji);
// 0 -> 50, capped at 500, negative -> INVALID_ARGUMENT.
absl::StatusOr<int32_t> NormalizePageSize(int32_t page_size,
                                          absl::string_view field = "page_size");

// Parses a required positive decimal id; `field` names it in errors.
absl::StatusOr<int64_t> ParseId(absl::string_view field,
                                absl::string_view value);
// Like ParseId, but an empty value yields 0.
absl::StatusOr<int64_t> ParseOptionalId(absl::string_view field,
                                        absl::string_view value);
std::string FormatId(int64_t id);

}  // namespace parley

#endif  // PARLEY_COMMON_VALIDATION_H_
