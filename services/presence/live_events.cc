#include "services/presence/live_events.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <memory>

#include "common/async_call.h"
#include "common/grpc_util.h"
#include "common/logging.h"
#include "common/status_util.h"
#include "common/validation.h"

namespace parley::presence {

namespace internal = ::parley::internal::v1;
using google::protobuf::util::TimeUtil;

LiveEvents::LiveEvents(RouteStore* routes, FanoutHub* hub,
                       internal::StorageService::StubInterface* storage,
                       ThreadPool* pool, Options options)
    : routes_(routes),
      hub_(hub),
      storage_(storage),
      pool_(pool),
      options_(options) {}

LiveEvents::~LiveEvents() { Stop(); }

void LiveEvents::Start() { timer_ = std::thread([this] { TimerLoop(); }); }

void LiveEvents::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  storage_calls_.Close();
}

void LiveEvents::OnRouteRegistered(int64_t user_id, bool announce) {
  if (!announce) return;
  pool_->TrySubmit([this, user_id] {
    PushPresence(user_id, /*online=*/true, routes_->Now());
  });
}

void LiveEvents::OnLastRouteGone(int64_t user_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    due_.push({std::chrono::steady_clock::now() + options_.offline_grace,
               user_id});
  }
  cv_.notify_all();
}

void LiveEvents::OnRoutesExpired(int64_t user_id) {
  // The gateway was last heard from one TTL ago.
  const int64_t last_seen =
      routes_->Now() - routes_->options().route_ttl.count();
  pool_->TrySubmit(
      [this, user_id, last_seen] { AnnounceOffline(user_id, last_seen); });
}

void LiveEvents::TimerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (due_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const auto next = due_.top().first;
    if (std::chrono::steady_clock::now() < next) {
      cv_.wait_until(lock, next);
      continue;
    }
    const int64_t user_id = due_.top().second;
    due_.pop();
    lock.unlock();
    const int64_t now = routes_->Now();
    const int64_t seen =
        now - std::chrono::duration_cast<std::chrono::milliseconds>(
                  options_.offline_grace)
                  .count();
    if (!pool_->TrySubmit([this, user_id, seen] { AnnounceOffline(user_id, seen); })) {
      spdlog::warn("presence pool full; offline announcement dropped");
    }
    lock.lock();
  }
}

void LiveEvents::AnnounceOffline(int64_t user_id, int64_t last_seen_ms) {
  auto claimed = routes_->ClaimOffline(user_id, last_seen_ms);
  if (!claimed.ok()) {
    spdlog::warn("offline check failed: {}", claimed.status().ToString());
    return;
  }
  if (!*claimed) return;  // back online, or announced elsewhere
  // Keep last-seen durably: Redis may lose it. Asynchronous: the frame
  // does not wait for the write.
  internal::RecordLastSeenRequest req;
  req.add_user_ids(user_id);
  *req.mutable_last_seen_time() =
      TimeUtil::MillisecondsToTimestamp(last_seen_ms);
  const bool queued = storage_calls_.Run(
      [this, req = std::move(req)](std::function<void()> done) mutable {
        CallAsync(storage_->async(),
                  &internal::StorageService::StubInterface::async_interface::
                      RecordLastSeen,
                  std::move(req), options_.storage_timeout,
                  [done = std::move(done)](
                      absl::StatusOr<internal::RecordLastSeenResponse> r) {
                    if (!r.ok()) {
                      spdlog::warn("recording last-seen failed: {}",
                                   r.status().ToString());
                    }
                    done();
                  });
      });
  if (!queued) {
    spdlog::warn(
        "last-seen dropped: too many storage calls waiting, or "
        "shutting down");
  }
  PushPresence(user_id, /*online=*/false, last_seen_ms);
}

void LiveEvents::PushPresence(int64_t user_id, bool online,
                              int64_t last_seen_ms) {
  internal::ListContactsRequest req;
  req.set_user_id(user_id);
  // Bounded: a burst of connects or disconnects must not land on storage
  // all at once (it answers "overloaded" to everyone past its queue).
  const bool queued = storage_calls_.Run([this, user_id, online, last_seen_ms,
                                          req = std::move(req)](
                                             std::function<void()>
                                                 done) mutable {
    CallAsync(
        storage_->async(),
        &internal::StorageService::StubInterface::async_interface::ListContacts,
        std::move(req), options_.storage_timeout,
        [this, user_id, online, last_seen_ms, done = std::move(done)](
            absl::StatusOr<internal::ListContactsResponse> contacts) {
          done();
          if (!contacts.ok()) {
            spdlog::warn("listing contacts failed: {}",
                         contacts.status().ToString());
            return;
          }
          if (contacts->user_ids_size() == 0) return;
          auto frame = std::make_shared<parley::v1::ServerFrame>();
          auto* p = frame->mutable_presence();
          p->set_user_id(FormatId(user_id));
          p->set_online(online);
          *p->mutable_last_seen_time() =
              TimeUtil::MillisecondsToTimestamp(last_seen_ms);
          auto recipients = std::make_shared<std::vector<int64_t>>(
              contacts->user_ids().begin(), contacts->user_ids().end());
          // Route lookups block on Redis: not on a gRPC thread.
          pool_->TrySubmit(
              [this, frame, recipients] { Push(*frame, *recipients); });
        });
  });
  if (!queued) {
    spdlog::warn(
        "presence change not pushed: too many storage calls "
        "waiting, or shutting down");
  }
}

void LiveEvents::OnTyping(int64_t chat_id, int64_t user_id, bool typing,
                          std::vector<int64_t> members) {
  members.erase(std::remove(members.begin(), members.end(), user_id),
                members.end());
  if (members.empty()) return;
  parley::v1::ServerFrame frame;
  auto* t = frame.mutable_typing();
  t->set_chat_id(FormatId(chat_id));
  t->set_user_id(FormatId(user_id));
  t->set_typing(typing);
  Push(frame, members);
}

void LiveEvents::OnTypingExpired(int64_t chat_id, int64_t user_id) {
  pool_->TrySubmit([this, chat_id, user_id] {
    auto claimed = routes_->ClaimTypingExpiry(chat_id, user_id);
    if (!claimed.ok() || !*claimed) return;
    internal::GetChatMembersRequest req;
    req.set_chat_id(chat_id);
    CallAsync(storage_->async(),
              &internal::StorageService::StubInterface::async_interface::
                  GetChatMembers,
              std::move(req), options_.storage_timeout,
              [this, chat_id, user_id](
                  absl::StatusOr<internal::GetChatMembersResponse> members) {
                if (!members.ok()) return;
                auto ids = std::make_shared<std::vector<int64_t>>(
                    members->user_ids().begin(), members->user_ids().end());
                pool_->TrySubmit([this, chat_id, user_id, ids] {
                  OnTyping(chat_id, user_id, /*typing=*/false, *ids);
                });
              });
  });
}

void LiveEvents::OnKeyExpired(const std::string& key) {
  int64_t user_id = 0, chat_id = 0;
  if (RouteStore::ParseRoutesKey(key, &user_id)) {
    OnRoutesExpired(user_id);
  } else if (RouteStore::ParseTypingKey(key, &chat_id, &user_id)) {
    OnTypingExpired(chat_id, user_id);
  }
}

void LiveEvents::Push(const parley::v1::ServerFrame& frame,
                      const std::vector<int64_t>& recipients) {
  auto routes = routes_->Lookup(recipients);
  if (!routes.ok()) {
    auto d = std::make_shared<internal::Delivery>();
    d->mutable_recipient_user_ids()->Add(recipients.begin(), recipients.end());
    *d->mutable_frame() = frame;
    hub_->Broadcast(std::move(d));
    return;
  }
  for (auto& [gateway, users] : *routes) {
    auto d = std::make_shared<internal::Delivery>();
    d->mutable_recipient_user_ids()->Add(users.begin(), users.end());
    *d->mutable_frame() = frame;
    hub_->Push(gateway, std::move(d));
  }
}

}  // namespace parley::presence
