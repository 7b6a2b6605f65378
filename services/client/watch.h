// `parley watch`: follows the live event stream, reconnecting with backoff
// and catching up on missed events through SyncChat.
//
// Correctness rule: for every chat the watcher remembers the highest seq it
// has shown. Before the first connect it takes a baseline from ListChats
// (history before that is not replayed). After each (re)connect, once the
// first Pong confirms the stream is registered, it calls ListChats and
// SyncChat for every chat whose last_seq moved past what it has shown. Live
// events at or below that seq are duplicates and skipped; a live event that
// skips ahead fills the gap with SyncChat first. So every event is shown
// once and in seq order per chat.
#ifndef PARLEY_SERVICES_CLIENT_WATCH_H_
#define PARLEY_SERVICES_CLIENT_WATCH_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "services/client/chat_client.h"
#include "services/client/format.h"

namespace parley::client {

struct WatchOptions {
  std::chrono::milliseconds ping_interval{20000};
  // The stream is abandoned when no frame at all arrived for this long.
  std::chrono::milliseconds silence_timeout{65000};
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  // Polled about every 100 ms; returning true ends Run() cleanly.
  std::function<bool()> should_stop;
};

class Watcher {
 public:
  // `out` gets one line per event, `err` connection status lines.
  Watcher(ChatClient* client, std::string self_user_id, std::ostream* out,
          std::ostream* err, WatchOptions options);

  // Runs until stopped (returns OK) or a failure that retrying cannot fix,
  // such as an invalid token (returns it).
  absl::Status Run();

  // Thread-safe; makes Run() return soon.
  void Stop();

 private:
  // One Connect stream from open to end. Sets *registered once the first
  // Pong arrived.
  absl::Status RunOnce(bool* registered);
  absl::Status TakeBaseline();
  absl::Status CatchUp(ConnectStream* stream);
  // Shows the chat's events after seen_[chat_id]. Missing access to the chat
  // (e.g. just removed from it) is reported and not an error.
  absl::Status SyncFrom(const std::string& chat_id, ConnectStream* stream);
  absl::Status HandleChatEvent(const v1::ChatEvent& event,
                               ConnectStream* stream);
  void ShowEvent(const v1::ChatEvent& event);
  void SendAck(ConnectStream* stream, const std::string& chat_id);
  bool WriteFrame(ConnectStream* stream, const v1::ClientFrame& frame);
  // Sleeps up to `d`; returns early when stopped.
  void SleepFor(std::chrono::milliseconds d);
  bool stopping() const { return stopping_.load(); }

  ChatClient* const client_;
  std::ostream* const out_;
  std::ostream* const err_;
  const WatchOptions options_;
  EventFormatter formatter_;

  // Highest seq shown per chat (touched only by the thread running Run).
  std::map<std::string, uint64_t> seen_;

  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  grpc::ClientContext* current_ctx_ = nullptr;  // guarded by mu_
  bool stream_done_ = false;                    // guarded by mu_
  std::mutex write_mu_;                         // serializes stream writes
  std::atomic<int64_t> last_frame_ms_{0};       // steady clock
};

}  // namespace parley::client

#endif  // PARLEY_SERVICES_CLIENT_WATCH_H_
