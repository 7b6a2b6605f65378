#include "services/storage/page_token.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace parley::storage {

std::string EncodeChatPageToken(int64_t activity_time_us, int64_t chat_id) {
  return absl::WebSafeBase64Escape(
      absl::StrCat(activity_time_us, ":", chat_id));
}

absl::Status DecodeChatPageToken(const std::string& token,
                                 int64_t* activity_time_us, int64_t* chat_id) {
  const absl::Status malformed =
      absl::InvalidArgumentError("page_token: malformed page token");
  std::string raw;
  if (token.size() > 100 || !absl::WebSafeBase64Unescape(token, &raw)) {
    return malformed;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(raw, ':');
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], activity_time_us) ||
      !absl::SimpleAtoi(parts[1], chat_id) || *chat_id <= 0) {
    return malformed;
  }
  return absl::OkStatus();
}

}  // namespace parley::storage
