#include "services/message/chat_orderer.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace parley::message {

ChatOrderer::ChatOrderer(Options options)
    : options_([&] {
        Options o = std::move(options);
        if (!o.clock) o.clock = [] { return std::chrono::steady_clock::now(); };
        o.max_held_per_chat = std::max<size_t>(1, o.max_held_per_chat);
        return o;
      }()) {}

ChatOrderer::~ChatOrderer() { Stop(); }

void ChatOrderer::Start() {
  std::lock_guard<std::mutex> lock(tick_mu_);
  if (ticker_.joinable()) return;
  stopping_ = false;
  ticker_ = std::thread([this] { TickLoop(); });
}

void ChatOrderer::Stop() {
  {
    std::lock_guard<std::mutex> lock(tick_mu_);
    stopping_ = true;
  }
  tick_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (int64_t id : shard.waiting) ReleaseAll(shard.chats[id]);
    shard.waiting.clear();
  }
}

void ChatOrderer::TickLoop() {
  const auto tick =
      std::max(std::chrono::milliseconds(1), options_.max_hold / 4);
  std::unique_lock<std::mutex> lock(tick_mu_);
  while (!tick_cv_.wait_for(lock, tick, [this] { return stopping_; })) {
    lock.unlock();
    Expire();
    lock.lock();
  }
}

void ChatOrderer::Begin(int64_t chat_id) {
  const auto now = options_.clock();
  Shard& shard = ShardFor(chat_id);
  std::lock_guard<std::mutex> lock(shard.mu);
  Chat& chat = shard.chats[chat_id];
  chat.last_event = now;
  ++chat.in_flight;
}

void ChatOrderer::Cancel(int64_t chat_id) {
  Shard& shard = ShardFor(chat_id);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.chats.find(chat_id);
  if (it == shard.chats.end()) return;
  Chat& chat = it->second;
  if (chat.in_flight > 0) --chat.in_flight;
  // Events of a chat not yet known waited for this write.
  if (!chat.known && chat.in_flight == 0 && !chat.held.empty()) {
    ReleaseAll(chat);
    shard.waiting.erase(chat_id);
  }
}

void ChatOrderer::Submit(int64_t chat_id, uint64_t seq, Release release) {
  const auto now = options_.clock();
  Shard& shard = ShardFor(chat_id);
  std::lock_guard<std::mutex> lock(shard.mu);
  Chat& chat = shard.chats[chat_id];
  chat.last_event = now;
  if (chat.in_flight > 0) --chat.in_flight;
  if (chat.known && seq < chat.next) {  // a repeat, or late past its gap
    std::move(release)();
    return;
  }
  if (chat.known && seq == chat.next) {
    std::move(release)();
    ++chat.next;
    ReleaseReady(chat);
    if (chat.held.empty()) shard.waiting.erase(chat_id);
    return;
  }
  // An earlier seq is on its way, or, for a chat not yet known, may be: a
  // write of it is still in flight.
  chat.held.insert_or_assign(seq, Held{std::move(release), now});
  if ((!chat.known && chat.in_flight == 0) ||
      chat.held.size() >= options_.max_held_per_chat) {
    ReleaseAll(chat);
    shard.waiting.erase(chat_id);
    return;
  }
  shard.waiting.insert(chat_id);
}

void ChatOrderer::ReleaseReady(Chat& chat) {
  while (!chat.held.empty() && chat.held.begin()->first <= chat.next) {
    auto node = chat.held.extract(chat.held.begin());
    std::move(node.mapped().release)();
    chat.next = std::max(chat.next, node.key() + 1);
  }
}

void ChatOrderer::ReleaseAll(Chat& chat) {
  for (auto& [seq, held] : chat.held) {
    std::move(held.release)();
    chat.next = std::max(chat.next, seq + 1);
    chat.known = true;
  }
  chat.held.clear();
}

void ChatOrderer::Expire() {
  const auto now = options_.clock();
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (auto it = shard.waiting.begin(); it != shard.waiting.end();) {
      Chat& chat = shard.chats[*it];
      // Held events may be younger than the gap's; the oldest decides.
      auto oldest = std::min_element(chat.held.begin(), chat.held.end(),
                                     [](const auto& a, const auto& b) {
                                       return a.second.since < b.second.since;
                                     });
      if (oldest != chat.held.end() &&
          now - oldest->second.since < options_.max_hold) {
        ++it;
        continue;
      }
      // Give up on the gap: what is held goes out, in order.
      ReleaseAll(chat);
      it = shard.waiting.erase(it);
    }
    if (now - shard.last_sweep >= options_.forget_after) {
      shard.last_sweep = now;
      for (auto it = shard.chats.begin(); it != shard.chats.end();) {
        if (it->second.held.empty() && it->second.in_flight == 0 &&
            now - it->second.last_event >= options_.forget_after) {
          it = shard.chats.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
}

size_t ChatOrderer::held() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (int64_t id : shard.waiting) n += shard.chats.at(id).held.size();
  }
  return n;
}

size_t ChatOrderer::chats() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    n += shard.chats.size();
  }
  return n;
}

}  // namespace parley::message
