// libFuzzer target: the ListChats page token, which clients send back
// verbatim (services/storage/page_token.h).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "services/storage/page_token.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  int64_t time_us = 0, chat_id = 0;
  const absl::Status s = parley::storage::DecodeChatPageToken(in, &time_us, &chat_id);
  if (s.ok()) {
    FUZZ_CHECK(chat_id > 0, "a decoded position has a valid chat id");
    int64_t t2 = 0, c2 = 0;
    FUZZ_CHECK(parley::storage::DecodeChatPageToken(
                   parley::storage::EncodeChatPageToken(time_us, chat_id), &t2, &c2)
                       .ok() &&
                   t2 == time_us && c2 == chat_id,
               "re-encoding a decoded token round-trips");
  } else {
    FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, "INVALID_ARGUMENT");
  }
  // Any position the server can produce decodes back to itself.
  if (size >= 16) {
    std::memcpy(&time_us, data, 8);
    std::memcpy(&chat_id, data + 8, 8);
    int64_t t2 = 0, c2 = 0;
    const std::string token = parley::storage::EncodeChatPageToken(time_us, chat_id);
    const bool ok = parley::storage::DecodeChatPageToken(token, &t2, &c2).ok();
    FUZZ_CHECK(ok == (chat_id > 0), "encoded positions decode");
    if (ok) FUZZ_CHECK(t2 == time_us && c2 == chat_id, "round trip");
  }
  return 0;
}
