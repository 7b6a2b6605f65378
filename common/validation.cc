#include "common/validation.h"

#include <iterator>

#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace parley {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// Decodes one code point at s[i]; returns its length or 0 when malformed.
size_t DecodeUtf8(absl::string_view s, size_t i, uint32_t* cp) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  const size_t left = s.size() - i;
  const unsigned char c = p[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len;
  uint32_t min;
  if ((c & 0xE0) == 0xC0) {
    len = 2, min = 0x80, *cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, min = 0x800, *cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, *cp = c & 0x07;
  } else {
    return 0;
  }
  if (left < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (p[k] & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) {
    return 0;
  }
  return len;
}

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    const size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t Utf8Length(absl::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool HasControlCharacter(absl::string_view s) {
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    const size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) return true;  // treat malformed input as unsafe
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) return true;
    i += n;
  }
  return false;
}

absl::Status ValidateUsername(absl::string_view username) {
  if (username.size() < 3 || username.size() > 32) {
    return Invalid("username", "must be 3-32 characters long");
  }
  for (char c : username) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return Invalid("username", "may only contain [a-z0-9_.-]");
  }
  return absl::OkStatus();
}

absl::Status ValidatePassword(absl::string_view password) {
  if (password.size() > kMaxPasswordBytes) {
    return Invalid("password", "must be at most 1024 bytes");
  }
  if (!IsValidUtf8(password)) return Invalid("password", "must be valid UTF-8");
  if (Utf8Length(password) < kMinPasswordChars) {
    return Invalid("password", "must be at least 8 characters");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> NormalizeDisplayName(absl::string_view display_name,
                                                 absl::string_view username) {
  if (display_name.empty()) return std::string(username);
  if (!IsValidUtf8(display_name)) {
    return Invalid("display_name", "must be valid UTF-8");
  }
  if (Utf8Length(display_name) > kMaxDisplayNameChars) {
    return Invalid("display_name", "must be at most 64 characters");
  }
  if (HasControlCharacter(display_name)) {
    return Invalid("display_name", "must not contain control characters");
  }
  return std::string(display_name);
}

absl::Status ValidateMessageText(absl::string_view text, bool required,
                                 size_t max_bytes) {
  if (text.empty()) {
    return required ? Invalid("text", "is required") : absl::OkStatus();
  }
  if (text.size() > max_bytes) {
    return Invalid("text", absl::StrCat("must be at most ", max_bytes, " bytes"));
  }
  if (!IsValidUtf8(text)) return Invalid("text", "must be valid UTF-8");
  if (text.find('\0') != absl::string_view::npos) {
    return Invalid("text", "must not contain NUL");
  }
  return absl::OkStatus();
}

absl::Status ValidateClientMessageId(absl::string_view id) {
  if (id.empty()) return Invalid("client_message_id", "is required");
  if (!IsValidUtf8(id)) {
    return Invalid("client_message_id", "must be valid UTF-8");
  }
  if (Utf8Length(id) > kMaxClientMessageIdChars) {
    return Invalid("client_message_id", "must be at most 64 characters");
  }
  if (HasControlCharacter(id)) {
    return Invalid("client_message_id", "must not contain control characters");
  }
  return absl::OkStatus();
}

absl::Status ValidateGroupTitle(absl::string_view title) {
  if (title.empty()) return Invalid("title", "is required");
  if (!IsValidUtf8(title)) return Invalid("title", "must be valid UTF-8");
  if (Utf8Length(title) > kMaxTitleChars) {
    return Invalid("title", "must be at most 200 characters");
  }
  if (HasControlCharacter(title)) {
    return Invalid("title", "must not contain control characters");
  }
  return absl::OkStatus();
}

absl::Status ValidateEmoji(absl::string_view emoji) {
  if (emoji.empty()) return Invalid("emoji", "is required");
  if (emoji.size() > kMaxEmojiBytes) {
    return Invalid("emoji", "must be at most 32 bytes");
  }
  if (!IsValidUtf8(emoji)) return Invalid("emoji", "must be valid UTF-8");
  UChar utf16[2 * kMaxEmojiBytes];
  int32_t length = 0;
  UErrorCode error = U_ZERO_ERROR;
  u_strFromUTF8(utf16, static_cast<int32_t>(std::size(utf16)), &length,
                emoji.data(), static_cast<int32_t>(emoji.size()), &error);
  if (U_FAILURE(error)) return Invalid("emoji", "must be valid UTF-8");
  for (int32_t i = 0; i < length;) {
    UChar32 c;
    U16_NEXT(utf16, i, length, c);
    if (u_isUWhiteSpace(c) || u_charType(c) == U_CONTROL_CHAR) {
      return Invalid("emoji", "must not contain whitespace or control characters");
    }
  }
  if (u_stringHasBinaryProperty(utf16, length, UCHAR_RGI_EMOJI)) {
    return absl::OkStatus();
  }
  // A bare emoji code point without its presentation selector ("❤").
  UChar32 first;
  int32_t k = 0;
  U16_NEXT(utf16, k, length, first);
  if (k == length && first > 0x7F && u_hasBinaryProperty(first, UCHAR_EMOJI)) {
    return absl::OkStatus();
  }
  return Invalid("emoji", "must be exactly one emoji");
}

absl::StatusOr<int32_t> NormalizePageSize(int32_t page_size,
                                          absl::string_view field) {
  if (page_size < 0) return Invalid(field, "must not be negative");
  if (page_size == 0) return kDefaultPageSize;
  return page_size > kMaxPageSize ? kMaxPageSize : page_size;
}

absl::StatusOr<int64_t> ParseId(absl::string_view field,
                                absl::string_view value) {
  if (value.empty()) return Invalid(field, "is required");
  int64_t id = 0;
  bool digits = value.size() <= 19;
  for (char c : value) digits = digits && c >= '0' && c <= '9';
  if (!digits || !absl::SimpleAtoi(value, &id) || id <= 0) {
    return Invalid(field, "is not a valid id");
  }
  return id;
}

absl::StatusOr<int64_t> ParseOptionalId(absl::string_view field,
                                        absl::string_view value) {
  if (value.empty()) return 0;
  return ParseId(field, value);
}

std::string FormatId(int64_t id) { return absl::StrCat(id); }

}  // namespace parley
