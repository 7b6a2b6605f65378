// libFuzzer target: every function of common/validation.h on arbitrary
// bytes, checked against ICU (UTF-8 well-formedness, code point counts) and
// against each function's documented contract.
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "common/validation.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// ICU's verdict on well-formed UTF-8 and the number of code points.
bool IcuUtf8(absl::string_view s, size_t* code_points) {
  UErrorCode error = U_ZERO_ERROR;
  int32_t utf16_length = 0;
  u_strFromUTF8(nullptr, 0, &utf16_length, s.data(),
                static_cast<int32_t>(s.size()), &error);
  if (error != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(error)) return false;
  *code_points = 0;
  for (int32_t i = 0; i < static_cast<int32_t>(s.size());) {
    UChar32 c;
    U8_NEXT(reinterpret_cast<const uint8_t*>(s.data()), i,
            static_cast<int32_t>(s.size()), c);
    if (c < 0) return false;
    ++*code_points;
  }
  return true;
}

bool HasControl(absl::string_view s) {
  for (int32_t i = 0; i < static_cast<int32_t>(s.size());) {
    UChar32 c;
    U8_NEXT(reinterpret_cast<const uint8_t*>(s.data()), i,
            static_cast<int32_t>(s.size()), c);
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F)) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);

  size_t icu_length = 0;
  const bool valid = parley::IsValidUtf8(in);
  FUZZ_CHECK(valid == IcuUtf8(in, &icu_length), "IsValidUtf8 disagrees with ICU");
  if (valid) {
    FUZZ_CHECK(parley::Utf8Length(in) == icu_length, "Utf8Length disagrees with ICU");
    FUZZ_CHECK(parley::HasControlCharacter(in) == HasControl(in),
               "HasControlCharacter disagrees with ICU");
  } else {
    FUZZ_CHECK(parley::HasControlCharacter(in), "malformed input must count as unsafe");
  }

  const absl::Status username = parley::ValidateUsername(in);
  parley::fuzz::CheckFieldError(username, "username");
  if (username.ok()) {
    FUZZ_CHECK(size >= 3 && size <= 32, "username length");
    for (char c : in) {
      FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                     c == '.' || c == '-',
                 "username character");
    }
  }

  const absl::Status password = parley::ValidatePassword(in);
  parley::fuzz::CheckFieldError(password, "password");
  if (password.ok()) {
    FUZZ_CHECK(valid && size <= parley::kMaxPasswordBytes && icu_length >= 8,
               "password contract");
  }

  auto display = parley::NormalizeDisplayName(in, "fallback");
  parley::fuzz::CheckFieldError(display.status(), "display_name");
  if (display.ok()) {
    if (in.empty()) {
      FUZZ_CHECK(*display == "fallback", "empty display name takes the username");
    } else {
      FUZZ_CHECK(*display == in && valid && icu_length <= 64 && !HasControl(in),
                 "display name contract");
    }
  }

  for (bool required : {true, false}) {
    const absl::Status text = parley::ValidateMessageText(in, required);
    parley::fuzz::CheckFieldError(text, "text");
    if (text.ok()) {
      FUZZ_CHECK(size <= parley::kMaxTextBytes && valid &&
                     std::memchr(in.data(), 0, size) == nullptr &&
                     (size > 0 || !required),
                 "text contract");
    }
  }

  const absl::Status client_id = parley::ValidateClientMessageId(in);
  parley::fuzz::CheckFieldError(client_id, "client_message_id");
  if (client_id.ok()) {
    FUZZ_CHECK(size > 0 && valid && icu_length <= 64 && !HasControl(in),
               "client_message_id contract");
  }

  const absl::Status title = parley::ValidateGroupTitle(in);
  parley::fuzz::CheckFieldError(title, "title");
  if (title.ok()) {
    FUZZ_CHECK(size > 0 && valid && icu_length <= 200 && !HasControl(in),
               "title contract");
  }

  const absl::Status emoji = parley::ValidateEmoji(in);
  parley::fuzz::CheckFieldError(emoji, "emoji");
  if (emoji.ok()) {
    FUZZ_CHECK(size > 0 && size <= parley::kMaxEmojiBytes && valid && !HasControl(in),
               "emoji contract");
  }

  int32_t page_size = 0;
  std::memcpy(&page_size, data, std::min(size, sizeof page_size));
  auto normalized = parley::NormalizePageSize(page_size);
  parley::fuzz::CheckFieldError(normalized.status(), "page_size");
  FUZZ_CHECK(normalized.ok() == (page_size >= 0), "only negative page sizes fail");
  if (normalized.ok()) {
    FUZZ_CHECK(*normalized >= 1 && *normalized <= parley::kMaxPageSize, "page size range");
  }

  auto id = parley::ParseId("chat_id", in);
  parley::fuzz::CheckFieldError(id.status(), "chat_id");
  if (id.ok()) {
    FUZZ_CHECK(*id > 0, "ids are positive");
    for (char c : in) FUZZ_CHECK(c >= '0' && c <= '9', "ids are decimal digits");
    const std::string formatted = parley::FormatId(*id);
    auto again = parley::ParseId("chat_id", formatted);
    FUZZ_CHECK(again.ok() && *again == *id, "FormatId round trip");
    if (in[0] != '0') FUZZ_CHECK(formatted == in, "canonical ids format back unchanged");
  }
  auto optional = parley::ParseOptionalId("file_id", in);
  parley::fuzz::CheckFieldError(optional.status(), "file_id");
  FUZZ_CHECK(optional.ok() == (in.empty() || id.ok()), "ParseOptionalId is ParseId or empty");
  if (in.empty()) FUZZ_CHECK(*optional == 0, "empty optional id is 0");
  return 0;
}
