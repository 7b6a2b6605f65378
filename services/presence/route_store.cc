#include "services/presence/route_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/validation.h"

namespace parley::presence {
namespace {

// How long the announced flag outlives the last change.
constexpr int64_t kAnnouncedTtlMs = 7 * 24 * 3600 * 1000LL;

// KEYS[1] routes, KEYS[2] announced; ARGV: now, expiry, gateway, ttl,
// announced ttl, changes channel, user id. Returns 1 when coming online must
// be announced. Publishes the user id when the set of gateways changed.
constexpr char kRegisterScript[] = R"lua(
local lapsed = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local added = redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if lapsed > 0 or added > 0 then redis.call('PUBLISH', ARGV[6], ARGV[7]) end
local prev = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
if prev == '1' then return 0 end
return 1
)lua";

// KEYS[1] routes, KEYS[2] announced, KEYS[3] seen; ARGV: now, last seen,
// announced ttl. Returns 1 when the caller must announce the user offline.
constexpr char kClaimOfflineScript[] = R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
if redis.call('GET', KEYS[2]) == '0' then return 0 end
redis.call('SET', KEYS[2], '0', 'PX', ARGV[3])
local old = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[2]) > old then redis.call('SET', KEYS[3], ARGV[2]) end
return 1
)lua";

// KEYS[1] routes, KEYS[2] seen, ARGV: now, gateway, changes channel, user
// id. Returns the number of live routes left; records last-seen when none
// is. Publishes the user id when the set of gateways changed.
constexpr char kUnregisterScript[] = R"lua(
local removed = redis.call('ZREM', KEYS[1], ARGV[2])
removed = removed + redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if removed > 0 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
local after = redis.call('ZCARD', KEYS[1])
if after == 0 then redis.call('SET', KEYS[2], ARGV[1]) end
return after
)lua";

absl::Status ReplyError(const RedisReply& r) {
  if (r.type == RedisReply::Type::kError) {
    return absl::UnavailableError(absl::StrCat("redis: ", r.str));
  }
  return absl::OkStatus();
}

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string RouteStore::RoutesKey(int64_t user_id) {
  return absl::StrCat("parley:{u:", user_id, "}:routes");
}
std::string RouteStore::SeenKey(int64_t user_id) {
  return absl::StrCat("parley:{u:", user_id, "}:seen");
}
std::string RouteStore::AnnouncedKey(int64_t user_id) {
  return absl::StrCat("parley:{u:", user_id, "}:announced");
}
std::string RouteStore::TypingKey(int64_t chat_id, int64_t user_id) {
  return absl::StrCat("parley:{c:", chat_id, "}:typing:", user_id);
}

namespace {

// An id as the key builders write it. SimpleAtoi alone also takes signs,
// blanks and leading zeros, so a key Parley never wrote ("{u:-2}",
// "{u: 7}", "{u:007}") would read as a user's.
bool ParseKeyId(absl::string_view s, int64_t* out) {
  absl::StatusOr<int64_t> id = ParseId("key", s);
  if (!id.ok() || FormatId(*id) != s) return false;
  *out = *id;
  return true;
}

}  // namespace

bool RouteStore::ParseRoutesKey(absl::string_view key, int64_t* user_id) {
  return absl::ConsumePrefix(&key, "parley:{u:") &&
         absl::ConsumeSuffix(&key, "}:routes") && ParseKeyId(key, user_id);
}

bool RouteStore::ParseTypingKey(absl::string_view key, int64_t* chat_id,
                                int64_t* user_id) {
  if (!absl::ConsumePrefix(&key, "parley:{c:")) return false;
  const size_t sep = key.find("}:typing:");
  if (sep == absl::string_view::npos) return false;
  return ParseKeyId(key.substr(0, sep), chat_id) &&
         ParseKeyId(key.substr(sep + 9), user_id);
}

RouteStore::RouteStore(RedisClient* redis, Options options)
    : redis_(redis), options_(std::move(options)) {}

int64_t RouteStore::Now() const {
  return options_.clock_ms ? options_.clock_ms() : SystemNowMs();
}

absl::StatusOr<bool> RouteStore::Register(const std::string& gateway_id,
                                          int64_t user_id) {
  const int64_t now = Now();
  auto r = redis_->Command(
      {"EVAL", kRegisterScript, "2", RoutesKey(user_id), AnnouncedKey(user_id),
       absl::StrCat(now), absl::StrCat(now + options_.route_ttl.count()),
       gateway_id, absl::StrCat(options_.route_ttl.count()),
       absl::StrCat(kAnnouncedTtlMs), kRouteChangesChannel,
       absl::StrCat(user_id)});
  if (!r.ok()) return r.status();
  if (auto s = ReplyError(*r); !s.ok()) return s;
  return r->integer == 1;
}

absl::StatusOr<bool> RouteStore::ClaimOffline(int64_t user_id,
                                              int64_t last_seen_ms) {
  auto r = redis_->Command({"EVAL", kClaimOfflineScript, "3",
                            RoutesKey(user_id), AnnouncedKey(user_id),
                            SeenKey(user_id), absl::StrCat(Now()),
                            absl::StrCat(last_seen_ms),
                            absl::StrCat(kAnnouncedTtlMs)});
  if (!r.ok()) return r.status();
  if (auto s = ReplyError(*r); !s.ok()) return s;
  return r->integer == 1;
}

absl::StatusOr<bool> RouteStore::SetTyping(int64_t chat_id, int64_t user_id,
                                           bool typing) {
  if (!typing) {
    auto cleared = ClearTyping({{chat_id, user_id}});
    if (!cleared.ok()) return cleared.status();
    return cleared->front();
  }
  const std::string key = TypingKey(chat_id, user_id);
  // One command: set with TTL and learn whether it already existed.
  auto r = redis_->Command(
      {"SET", key, "1", "PX", absl::StrCat(options_.typing_ttl.count()), "GET"});
  if (!r.ok()) return r.status();
  if (auto s = ReplyError(*r); !s.ok()) return s;
  return r->type == RedisReply::Type::kNil;
}

absl::StatusOr<std::vector<bool>> RouteStore::ClearTyping(
    const std::vector<std::pair<int64_t, int64_t>>& chat_users) {
  std::vector<bool> out;
  if (chat_users.empty()) return out;
  std::vector<std::vector<std::string>> commands;
  commands.reserve(chat_users.size());
  for (const auto& [chat, user] : chat_users) {
    commands.push_back({"DEL", TypingKey(chat, user)});
  }
  auto replies = redis_->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  for (const RedisReply& r : *replies) {
    if (auto s = ReplyError(r); !s.ok()) return s;
    out.push_back(r.integer == 1);
  }
  return out;
}

absl::StatusOr<bool> RouteStore::ClaimTypingExpiry(int64_t chat_id,
                                                   int64_t user_id) {
  const int64_t hold =
      std::max<int64_t>(100, std::min<int64_t>(1000, options_.typing_ttl.count() / 2));
  auto r = redis_->Command({"SET", TypingKey(chat_id, user_id) + ":expired",
                            "1", "NX", "PX", absl::StrCat(hold)});
  if (!r.ok()) return r.status();
  if (auto s = ReplyError(*r); !s.ok()) return s;
  return r->type == RedisReply::Type::kStatus;
}

absl::StatusOr<bool> RouteStore::Unregister(const std::string& gateway_id,
                                            int64_t user_id) {
  const int64_t now = Now();
  auto r = redis_->Command({"EVAL", kUnregisterScript, "2", RoutesKey(user_id),
                            SeenKey(user_id), absl::StrCat(now), gateway_id,
                            kRouteChangesChannel, absl::StrCat(user_id)});
  if (!r.ok()) return r.status();
  if (auto s = ReplyError(*r); !s.ok()) return s;
  return r->integer == 0;
}

absl::Status RouteStore::Heartbeat(const std::string& gateway_id,
                                   const std::vector<int64_t>& user_ids) {
  if (user_ids.empty()) return absl::OkStatus();
  const int64_t now = Now();
  const std::string expiry = absl::StrCat(now + options_.route_ttl.count());
  const std::string ttl = absl::StrCat(options_.route_ttl.count());
  // Per user: the route's old expiry, the refresh, the key's TTL.
  std::vector<std::vector<std::string>> commands;
  commands.reserve(user_ids.size() * 3);
  for (int64_t uid : user_ids) {
    const std::string key = RoutesKey(uid);
    commands.push_back({"ZSCORE", key, gateway_id});
    commands.push_back({"ZADD", key, expiry, gateway_id});
    commands.push_back({"PEXPIRE", key, ttl});
  }
  auto replies = redis_->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  // A route that was missing (e.g. Redis restarted) or had lapsed (no
  // heartbeat for a TTL) was invisible to lookups: routes cached without
  // it must be dropped.
  std::vector<int64_t> revived;
  for (size_t i = 0; i < replies->size(); ++i) {
    if (auto s = ReplyError((*replies)[i]); !s.ok()) return s;
  }
  for (size_t u = 0; u < user_ids.size(); ++u) {
    const RedisReply& old_expiry = (*replies)[3 * u];
    double score = 0;
    if (old_expiry.type != RedisReply::Type::kString ||
        !absl::SimpleAtod(old_expiry.str, &score) ||
        score < static_cast<double>(now)) {
      revived.push_back(user_ids[u]);
    }
  }
  if (!revived.empty()) {
    auto r = redis_->Command(
        {"PUBLISH", kRouteChangesChannel, absl::StrJoin(revived, ",")});
    if (!r.ok()) return r.status();
    if (auto s = ReplyError(*r); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::vector<int64_t> RouteStore::ParseRouteChanges(absl::string_view payload) {
  std::vector<int64_t> users;
  for (absl::string_view part : absl::StrSplit(payload, ',')) {
    int64_t id = 0;
    if (ParseKeyId(part, &id)) users.push_back(id);
  }
  return users;
}

absl::StatusOr<std::map<std::string, std::vector<int64_t>>> RouteStore::Lookup(
    const std::vector<int64_t>& user_ids) {
  auto both = LookupAndClearTyping(user_ids, {});
  if (!both.ok()) return both.status();
  return std::move(both->routes);
}

absl::StatusOr<RouteStore::RoutesAndTyping> RouteStore::LookupAndClearTyping(
    const std::vector<int64_t>& user_ids,
    const std::vector<std::pair<int64_t, int64_t>>& chat_users) {
  RoutesAndTyping out;
  if (user_ids.empty() && chat_users.empty()) return out;
  const std::string now = absl::StrCat(Now());
  std::vector<std::vector<std::string>> commands;
  commands.reserve(user_ids.size() + chat_users.size());
  for (int64_t uid : user_ids) {
    commands.push_back({"ZRANGEBYSCORE", RoutesKey(uid), now, "+inf"});
  }
  for (const auto& [chat, user] : chat_users) {
    commands.push_back({"DEL", TypingKey(chat, user)});
  }
  auto replies = redis_->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  for (size_t i = 0; i < user_ids.size(); ++i) {
    const RedisReply& r = (*replies)[i];
    if (auto s = ReplyError(r); !s.ok()) return s;
    for (const auto& gw : r.elements) out.routes[gw.str].push_back(user_ids[i]);
  }
  for (size_t k = 0; k < chat_users.size(); ++k) {
    const RedisReply& r = (*replies)[user_ids.size() + k];
    if (!ReplyError(r).ok()) {
      out.typing_cleared.clear();
      break;
    }
    out.typing_cleared.push_back(r.integer == 1);
  }
  return out;
}

absl::StatusOr<std::vector<UserPresence>> RouteStore::GetPresence(
    const std::vector<int64_t>& user_ids) {
  std::vector<UserPresence> out;
  if (user_ids.empty()) return out;
  const int64_t now = Now();
  std::vector<std::vector<std::string>> commands;
  for (int64_t uid : user_ids) {
    // Newest route (by expiry) and the recorded last-seen time.
    commands.push_back(
        {"ZREVRANGE", RoutesKey(uid), "0", "0", "WITHSCORES"});
    commands.push_back({"GET", SeenKey(uid)});
  }
  auto replies = redis_->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  for (size_t i = 0; i < user_ids.size(); ++i) {
    const RedisReply& routes = (*replies)[2 * i];
    const RedisReply& seen = (*replies)[2 * i + 1];
    if (auto s = ReplyError(routes); !s.ok()) return s;
    UserPresence p;
    p.user_id = user_ids[i];
    int64_t expiry = 0;
    if (routes.elements.size() == 2) {
      double score = 0;
      if (absl::SimpleAtod(routes.elements[1].str, &score)) {
        expiry = static_cast<int64_t>(score);
      }
    }
    if (expiry > now) {
      p.online = true;
      p.last_seen_ms = now;
    } else {
      int64_t seen_ms = 0;
      if (seen.type == RedisReply::Type::kString) {
        absl::SimpleAtoi(seen.str, &seen_ms);
      }
      // A gateway that died was last heard from one TTL before expiry.
      const int64_t heard = expiry ? expiry - options_.route_ttl.count() : 0;
      p.last_seen_ms = std::max(seen_ms, heard);
    }
    out.push_back(p);
  }
  return out;
}

}  // namespace parley::presence
