#include "services/presence/keyspace_listener.h"

#include <hiredis/hiredis.h>
#include <poll.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "services/presence/route_store.h"

namespace parley::presence {
namespace {

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

ReplyPtr Command(redisContext* c, const char* fmt, const char* arg = nullptr) {
  return ReplyPtr(static_cast<redisReply*>(
      arg ? redisCommand(c, fmt, arg) : redisCommand(c, fmt)));
}

}  // namespace

KeyspaceListener::KeyspaceListener(RedisClient::Options options,
                                   Callbacks callbacks)
    : options_(std::move(options)), callbacks_(std::move(callbacks)) {}

KeyspaceListener::~KeyspaceListener() { Stop(); }

void KeyspaceListener::Start() { thread_ = std::thread([this] { Run(); }); }

void KeyspaceListener::Stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void KeyspaceListener::Run() {
  auto backoff = std::chrono::milliseconds(100);
  while (!stopping_) {
    Listen();
    if (stopping_) return;
    // Sleep in small steps so Stop stays prompt.
    for (auto slept = std::chrono::milliseconds(0);
         slept < backoff && !stopping_; slept += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // Capped low: routes lost with Redis are restored only once this
    // reconnects and asks the gateways to resync.
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

void KeyspaceListener::Listen() {
  timeval tv{0, 500000};
  ContextPtr c(redisConnectWithTimeout(options_.host.c_str(), options_.port, tv));
  if (!c || c->err) return;
  redisSetTimeout(c.get(), tv);
  // Make sure expirations are published: add E (keyevent) and x (expired)
  // to whatever the server already publishes.
  std::string flags;
  if (ReplyPtr r = Command(c.get(), "CONFIG GET notify-keyspace-events");
      r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
    flags.assign(r->element[1]->str, r->element[1]->len);
  }
  bool changed = false;
  for (char f : {'E', 'x'}) {
    if (flags.find(f) == std::string::npos && flags.find('A') == std::string::npos) {
      flags.push_back(f);
      changed = true;
    }
  }
  if (changed) {
    ReplyPtr r = Command(c.get(), "CONFIG SET notify-keyspace-events %s",
                         flags.c_str());
    if (!r || r->type == REDIS_REPLY_ERROR) {
      spdlog::warn("cannot enable keyspace notifications; expirations will "
                   "not be announced");
    }
  }
  const std::string channel =
      absl::StrCat("__keyevent@", options_.db, "__:expired");
  // One command for both channels, so that no message can arrive between
  // two confirmations; the second confirmation is read (and skipped) below.
  ReplyPtr sub(static_cast<redisReply*>(
      redisCommand(c.get(), "SUBSCRIBE %s %s", channel.c_str(),
                   RouteStore::kRouteChangesChannel)));
  if (!sub || sub->type == REDIS_REPLY_ERROR) return;
  subscribed_ = true;
  spdlog::info("listening for key expirations on {} and route changes on {}",
               channel, RouteStore::kRouteChangesChannel);
  if (callbacks_.on_subscription) callbacks_.on_subscription(true);
  if (ever_subscribed_ && callbacks_.on_resubscribed) {
    callbacks_.on_resubscribed();
  }
  ever_subscribed_ = true;
  while (!stopping_) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(c.get(), &raw) != REDIS_OK) break;
    if (raw == nullptr) {
      pollfd pfd{c->fd, POLLIN, 0};
      const int n = poll(&pfd, 1, 200);
      if (n < 0) break;
      if (n == 0) continue;
      if (redisBufferRead(c.get()) != REDIS_OK) break;
      continue;
    }
    ReplyPtr reply(static_cast<redisReply*>(raw));
    // ["message", channel, key or payload]
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[1]->type != REDIS_REPLY_STRING ||
        reply->element[2]->type != REDIS_REPLY_STRING) {
      continue;
    }
    const std::string_view from(reply->element[1]->str, reply->element[1]->len);
    std::string data(reply->element[2]->str, reply->element[2]->len);
    if (from == RouteStore::kRouteChangesChannel) {
      if (callbacks_.on_route_changes) callbacks_.on_route_changes(data);
    } else if (callbacks_.on_expired) {
      callbacks_.on_expired(data);
    }
  }
  subscribed_ = false;
  if (callbacks_.on_subscription) callbacks_.on_subscription(false);
  if (!stopping_) spdlog::warn("lost the Redis keyspace subscription");
}

}  // namespace parley::presence
