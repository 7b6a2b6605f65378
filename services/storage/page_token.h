// The opaque ListChats page token: a position (activity time, chat id) in
// web-safe base64. Clients send it back verbatim, so decoding treats it as
// untrusted input.
//
//   std::string token = EncodeChatPageToken(activity_time_us, chat_id);
//   absl::Status s = DecodeChatPageToken(token, &activity_time_us, &chat_id);
#ifndef PARLEY_SERVICES_STORAGE_PAGE_TOKEN_H_
#define PARLEY_SERVICES_STORAGE_PAGE_TOKEN_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace parley::storage {

std::string EncodeChatPageToken(int64_t activity_time_us, int64_t chat_id);
// INVALID_ARGUMENT "page_token: ..." when malformed.
absl::Status DecodeChatPageToken(const std::string& token,
                                 int64_t* activity_time_us, int64_t* chat_id);

}  // namespace parley::storage

#endif  // PARLEY_SERVICES_STORAGE_PAGE_TOKEN_H_
