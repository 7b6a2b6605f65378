// libFuzzer target: what the presence service parses from outside, the
// --redis_url flag and the key names of Redis keyspace notifications
// (services/presence/redis_client.h, route_store.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "services/presence/redis_client.h"
#include "services/presence/route_store.h"
#include "tests/fuzz/fuzz_check.h"

using parley::presence::RedisClient;
using parley::presence::RouteStore;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);

  auto url = RedisClient::ParseUrl(in);
  if (url.ok()) {
    FUZZ_CHECK(absl::StartsWith(in, "redis://"), "scheme");
    FUZZ_CHECK(!url->host.empty(), "a host");
    FUZZ_CHECK(url->host.find('/') == std::string::npos &&
                   url->host.find('@') == std::string::npos,
               "the host is only a host");
    FUZZ_CHECK(url->port > 0 && url->port <= 65535, "a TCP port");
    FUZZ_CHECK(url->db >= 0, "a database number");
  } else {
    FUZZ_CHECK(url.status().code() == absl::StatusCode::kInvalidArgument &&
                   absl::StartsWith(url.status().message(), "redis_url"),
               "INVALID_ARGUMENT naming the flag");
  }

  // A key that parses is exactly the key Parley writes for that id, so a
  // foreign key never reads as one of ours.
  int64_t user_id = 0, chat_id = 0;
  if (RouteStore::ParseRoutesKey(in, &user_id)) {
    FUZZ_CHECK(user_id > 0, "routes key of a valid user id");
    FUZZ_CHECK(RouteStore::RoutesKey(user_id) == in, "routes key round trip");
  }
  if (RouteStore::ParseTypingKey(in, &chat_id, &user_id)) {
    FUZZ_CHECK(chat_id > 0 && user_id > 0, "typing key of valid ids");
    FUZZ_CHECK(RouteStore::TypingKey(chat_id, user_id) == in, "typing key round trip");
  }
  return 0;
}
