#include "services/presence/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace parley::presence {
namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = ms.count() / 1000;
  tv.tv_usec = (ms.count() % 1000) * 1000;
  return tv;
}

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(Convert(r->element[i]));
      }
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

}  // namespace

absl::StatusOr<RedisClient::Options> RedisClient::ParseUrl(
    absl::string_view url) {
  Options o;
  if (!absl::ConsumePrefix(&url, "redis://")) {
    return absl::InvalidArgumentError("redis_url: must start with redis://");
  }
  absl::string_view host_port = url;
  if (auto slash = url.find('/'); slash != absl::string_view::npos) {
    host_port = url.substr(0, slash);
    absl::string_view db = url.substr(slash + 1);
    // SELECT refuses a negative index only once connected; refuse it here.
    if (!db.empty() && (!absl::SimpleAtoi(db, &o.db) || o.db < 0)) {
      return absl::InvalidArgumentError("redis_url: bad database number");
    }
  }
  if (auto at = host_port.rfind('@'); at != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "redis_url: credentials are not supported");
  }
  auto colon = host_port.rfind(':');
  if (colon == absl::string_view::npos) {
    o.host = std::string(host_port);
  } else {
    o.host = std::string(host_port.substr(0, colon));
    // Out-of-range ports would otherwise surface as a connect error later.
    if (!absl::SimpleAtoi(host_port.substr(colon + 1), &o.port) ||
        o.port < 1 || o.port > 65535) {
      return absl::InvalidArgumentError("redis_url: bad port");
    }
  }
  if (o.host.empty()) return absl::InvalidArgumentError("redis_url: no host");
  return o;
}

RedisClient::RedisClient(Options options) : options_(std::move(options)) {}

RedisClient::~RedisClient() {
  std::lock_guard<std::mutex> lock(mu_);
  for (redisContext* c : idle_) redisFree(c);
}

absl::StatusOr<redisContext*> RedisClient::Connect() {
  redisContext* c = redisConnectWithTimeout(options_.host.c_str(),
                                            options_.port,
                                            ToTimeval(options_.timeout));
  if (c == nullptr || c->err) {
    std::string err = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return absl::UnavailableError(absl::StrCat("redis: connect: ", err));
  }
  redisSetTimeout(c, ToTimeval(options_.timeout));
  redisEnableKeepAlive(c);
  if (options_.db != 0) {
    auto* r = static_cast<redisReply*>(
        redisCommand(c, "SELECT %d", options_.db));
    const bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    if (!ok) {
      redisFree(c);
      return absl::UnavailableError("redis: SELECT failed");
    }
  }
  return c;
}

absl::StatusOr<redisContext*> RedisClient::Acquire(bool* reused) {
  *reused = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const bool got = cv_.wait_for(lock, options_.timeout, [this] {
      return !idle_.empty() || open_ < options_.pool_size;
    });
    if (!got) return absl::UnavailableError("redis: connection pool busy");
    if (!idle_.empty()) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      *reused = true;
      return c;
    }
    ++open_;
  }
  auto c = Connect();
  if (!c.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
    cv_.notify_one();
  }
  return c;
}

void RedisClient::Release(redisContext* ctx, bool healthy) {
  std::lock_guard<std::mutex> lock(mu_);
  if (healthy) {
    idle_.push_back(ctx);
  } else {
    // One broken connection usually means Redis went away: the idle ones
    // are most likely dead too.
    redisFree(ctx);
    --open_;
    for (redisContext* c : idle_) redisFree(c);
    open_ -= static_cast<int>(idle_.size());
    idle_.clear();
  }
  cv_.notify_all();
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  // A pooled connection may have died with a Redis restart: try once more
  // on a fresh one. Every caller's commands are safe to repeat.
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    auto replies = PipelineOnce(commands, &reused);
    if (replies.ok() || !reused || attempt > 0) return replies;
  }
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::PipelineOnce(
    const std::vector<std::vector<std::string>>& commands, bool* reused) {
  auto ctx = Acquire(reused);
  if (!ctx.ok()) return ctx.status();
  redisContext* c = *ctx;
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(),
                               lens.data()) != REDIS_OK) {
      Release(c, false);
      return absl::UnavailableError("redis: cannot queue command");
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
      std::string err = c->err ? c->errstr : "no reply";
      Release(c, false);
      return absl::UnavailableError(absl::StrCat("redis: ", err));
    }
    replies.push_back(Convert(static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
  }
  Release(c, true);
  return replies;
}

absl::StatusOr<RedisReply> RedisClient::Command(
    const std::vector<std::string>& args) {
  auto replies = Pipeline({args});
  if (!replies.ok()) return replies.status();
  return std::move((*replies)[0]);
}

}  // namespace parley::presence
