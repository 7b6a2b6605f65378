// Puts each chat's live events back in seq order before they are pushed.
//
// Storage hands out a chat's seqs in commit order, but the answers of two
// batch calls in flight come back on two threads, so the event with seq 8
// can reach the fan-out before seq 7. The orderer releases an event at once
// when it is the chat's next seq, holds it while an earlier seq is still on
// its way, and releases what it holds in seq order when the gap fills or
// after `max_hold` at the latest (a seq whose event is not pushed here, e.g.
// one written through another instance, must not stall the chat). A seq
// below the chat's next one (a retried send's repeat) is released at once.
//
// Which seq comes next is known once the orderer has released one of the
// chat's events. Before that (a chat new to it, or forgotten while idle)
// it goes by the writes in flight: the caller says Begin when it starts a
// write that may make an event, and Submit or Cancel when it ends. Events
// of a chat not yet known are held until none of its writes is in flight,
// then released in seq order; a lone write's event goes out at once.
//
// Release actions run under the orderer's lock for that chat, in seq order:
// they must not block and must not call back into the orderer.
//
//   ChatOrderer orderer({.max_hold = std::chrono::milliseconds(50)});
//   orderer.Start();  // expires held events every few milliseconds
//   orderer.Begin(chat_id);  // then, when the write is done:
//   orderer.Submit(chat_id, event.seq(), [&, frame] { fanout.Fanout(...); });
//   // or, when it failed or made no new event: orderer.Cancel(chat_id);
#ifndef PARLEY_SERVICES_MESSAGE_CHAT_ORDERER_H_
#define PARLEY_SERVICES_MESSAGE_CHAT_ORDERER_H_

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"

namespace parley::message {

class ChatOrderer {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  using Release = absl::AnyInvocable<void() &&>;

  struct Options {
    // Longest an event waits for the seqs before it.
    std::chrono::milliseconds max_hold{50};
    // Events one chat may hold; past it all are released in order.
    size_t max_held_per_chat = 1024;
    // A chat with nothing held and no event for this long is forgotten.
    std::chrono::milliseconds forget_after{std::chrono::minutes(2)};
    // Default: steady_clock::now.
    Clock clock = {};
  };

  explicit ChatOrderer(Options options);
  ~ChatOrderer();

  // Starts the thread that calls Expire every max_hold / 4.
  void Start();
  // Stops it, releasing everything still held.
  void Stop();

  // A write that may make an event of the chat has started.
  void Begin(int64_t chat_id);
  // Ends a write with its event: releases it now or holds it (see above).
  // Also takes events with no Begin.
  void Submit(int64_t chat_id, uint64_t seq, Release release);
  // Ends a write that made no event to push.
  void Cancel(int64_t chat_id);
  // Releases, in order, what chats have held for max_hold or longer, and
  // forgets idle chats now and then.
  void Expire();

  // Events held now, all chats together.
  size_t held() const;
  // Chats remembered now.
  size_t chats() const;

 private:
  struct Held {
    Release release;
    std::chrono::steady_clock::time_point since;
  };
  struct Chat {
    bool known = false;  // `next` holds: an event has been released
    uint64_t next = 0;   // the seq released next
    int in_flight = 0;   // Begin without Submit or Cancel yet
    std::map<uint64_t, Held> held;
    std::chrono::steady_clock::time_point last_event;
  };
  static constexpr int kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<int64_t, Chat> chats ABSL_GUARDED_BY(mu);
    // Chats holding something (the ones Expire looks at).
    std::unordered_set<int64_t> waiting ABSL_GUARDED_BY(mu);
    std::chrono::steady_clock::time_point last_sweep ABSL_GUARDED_BY(mu);
  };

  Shard& ShardFor(int64_t chat_id) {
    return shards_[static_cast<uint64_t>(chat_id) % kShards];
  }
  // Releases held events from the front while they are the next seq.
  static void ReleaseReady(Chat& chat);
  // Releases everything held, in order, and moves `next` past it.
  static void ReleaseAll(Chat& chat);
  void TickLoop();

  const Options options_;
  std::array<Shard, kShards> shards_;
  std::mutex tick_mu_;
  std::condition_variable tick_cv_;
  bool stopping_ ABSL_GUARDED_BY(tick_mu_) = false;
  std::thread ticker_;
};

}  // namespace parley::message

#endif  // PARLEY_SERVICES_MESSAGE_CHAT_ORDERER_H_
