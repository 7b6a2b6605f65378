// A small pool of blocking hiredis connections with timeouts and automatic
// reconnection. Every failure is UNAVAILABLE; a broken connection is
// replaced on next use, so a restarted Redis is picked up without restarts.
//
//   auto opts = RedisClient::ParseUrl("redis://127.0.0.1:6379/0");
//   RedisClient redis(*opts);
//   auto replies = redis.Pipeline({{"SET", "k", "v"}, {"GET", "k"}});
#ifndef PARLEY_SERVICES_PRESENCE_REDIS_CLIENT_H_
#define PARLEY_SERVICES_PRESENCE_REDIS_CLIENT_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct redisContext;

namespace parley::presence {

struct RedisReply {
  enum class Type { kNil, kInteger, kString, kStatus, kArray, kError };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;
  std::vector<RedisReply> elements;
};

class RedisClient {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 6379;
    int db = 0;
    std::chrono::milliseconds timeout{500};
    int pool_size = 4;
  };
  // Parses redis://host:port[/db].
  static absl::StatusOr<Options> ParseUrl(absl::string_view url);

  explicit RedisClient(Options options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends all commands on one connection and returns one reply each. A reply
  // of type kError is returned as is; transport failures are UNAVAILABLE.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<std::vector<std::string>>& commands);
  absl::StatusOr<RedisReply> Command(const std::vector<std::string>& args);

 private:
  // A pooled connection; `*reused` tells whether it sat idle in the pool
  // (and so may have been closed by a Redis restart meanwhile).
  absl::StatusOr<redisContext*> Acquire(bool* reused);
  absl::StatusOr<std::vector<RedisReply>> PipelineOnce(
      const std::vector<std::vector<std::string>>& commands, bool* reused);
  void Release(redisContext* ctx, bool healthy);
  absl::StatusOr<redisContext*> Connect();

  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<redisContext*> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace parley::presence

#endif  // PARLEY_SERVICES_PRESENCE_REDIS_CLIENT_H_
