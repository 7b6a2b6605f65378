#include "services/client/watch.h"

#include <algorithm>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/client/client_status.h"

namespace parley::client {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Failures that reconnecting cannot fix.
bool IsFatal(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kInvalidArgument:
      return true;
    default:
      return false;
  }
}

std::string Brief(const absl::Status& s) {
  return absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message());
}

}  // namespace

Watcher::Watcher(ChatClient* client, std::string self_user_id,
                 std::ostream* out, std::ostream* err, WatchOptions options)
    : client_(client),
      out_(out),
      err_(err),
      options_(std::move(options)),
      formatter_(std::move(self_user_id)) {}

void Watcher::Stop() {
  stopping_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  if (current_ctx_ != nullptr) current_ctx_->TryCancel();
  cv_.notify_all();
}

void Watcher::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping(); });
}

absl::Status Watcher::Run() {
  // Turns should_stop() (e.g. a Ctrl-C flag set by a signal handler) into
  // Stop(), which may then cancel a blocking Read.
  std::atomic<bool> run_done{false};
  std::thread monitor([this, &run_done] {
    while (!run_done.load()) {
      if (options_.should_stop && options_.should_stop() && !stopping()) {
        Stop();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  struct Joiner {
    std::atomic<bool>* done;
    std::thread* t;
    ~Joiner() {
      done->store(true);
      t->join();
    }
  } joiner{&run_done, &monitor};

  std::mt19937 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  std::chrono::milliseconds backoff = options_.initial_backoff;
  auto wait_before_retry = [&](const std::string& what, const absl::Status& s) {
    const auto delay = std::chrono::milliseconds(
        static_cast<int64_t>(backoff.count() * jitter(rng)));
    *err_ << "watch: " << what << " (" << Brief(s) << "); retrying in "
          << absl::StrFormat("%.1f", delay.count() / 1000.0) << " s"
          << std::endl;
    SleepFor(delay);
    backoff = std::min(backoff * 2, options_.max_backoff);
  };

  // History from before the watch started is not replayed.
  while (!stopping()) {
    absl::Status s = TakeBaseline();
    if (s.ok()) break;
    if (IsFatal(s)) return s;
    wait_before_retry("cannot list chats", s);
  }

  while (!stopping()) {
    bool registered = false;
    absl::Status s = RunOnce(&registered);
    if (stopping()) break;
    if (IsFatal(s)) return s;
    if (registered) backoff = options_.initial_backoff;
    wait_before_retry("disconnected", s);
  }
  return absl::OkStatus();
}

absl::Status Watcher::TakeBaseline() {
  absl::StatusOr<std::vector<v1::Chat>> chats = client_->ListAllChats();
  if (!chats.ok()) return chats.status();
  for (const v1::Chat& c : *chats) {
    uint64_t& seen = seen_[c.chat_id()];
    seen = std::max(seen, c.last_seq());
    formatter_.RememberChat(c);
  }
  return absl::OkStatus();
}

absl::Status Watcher::RunOnce(bool* registered) {
  grpc::ClientContext ctx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping()) return absl::CancelledError("stopped");
    current_ctx_ = &ctx;
    stream_done_ = false;
  }
  // Wait for the gateway rather than fail fast: a stream opened while the
  // gateway is down starts as soon as the channel reconnects (the channel's
  // own reconnect backoff is short), instead of after our longer backoff.
  ctx.set_wait_for_ready(true);
  std::unique_ptr<ConnectStream> stream = client_->Connect(&ctx);
  last_frame_ms_ = SteadyMs();

  int64_t nonce = 1;
  v1::ClientFrame ping;
  ping.mutable_ping()->set_nonce(nonce++);
  WriteFrame(stream.get(), ping);

  // Pings every ping_interval; abandons a stream that went silent.
  std::atomic<bool> silent{false};
  std::thread pinger([&] {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait_for(lock, options_.ping_interval,
                   [&] { return stream_done_ || stopping(); });
      if (stream_done_ || stopping()) return;
      if (SteadyMs() - last_frame_ms_.load() >
          options_.silence_timeout.count()) {
        silent = true;
        ctx.TryCancel();
        return;
      }
      lock.unlock();
      v1::ClientFrame frame;
      frame.mutable_ping()->set_nonce(nonce++);
      WriteFrame(stream.get(), frame);
      lock.lock();
    }
  });

  absl::Status failure;
  v1::ServerFrame frame;
  while (stream->Read(&frame)) {
    last_frame_ms_ = SteadyMs();
    if (!failure.ok()) continue;  // draining after TryCancel
    absl::Status s;
    switch (frame.frame_case()) {
      case v1::ServerFrame::kPong:
        if (!*registered) {
          *registered = true;
          *err_ << "watch: connected" << std::endl;
          s = CatchUp(stream.get());
        }
        break;
      case v1::ServerFrame::kChatEvent:
        s = HandleChatEvent(frame.chat_event(), stream.get());
        break;
      default: {
        const std::string line = formatter_.FormatServerFrame(frame);
        if (!line.empty()) *out_ << line << std::endl;
        break;
      }
    }
    if (!s.ok()) {
      failure = s;
      ctx.TryCancel();
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream_done_ = true;
    current_ctx_ = nullptr;
  }
  cv_.notify_all();
  pinger.join();
  const grpc::Status finish = stream->Finish();
  if (!failure.ok()) return failure;
  if (silent) {
    return absl::UnavailableError(
        absl::StrCat(*registered ? "no frame from the gateway for "
                                 : "could not reach the gateway for ",
                     options_.silence_timeout.count() / 1000, " s"));
  }
  if (finish.ok()) return absl::UnavailableError("server closed the stream");
  return StatusFromGrpc(finish);
}

absl::Status Watcher::CatchUp(ConnectStream* stream) {
  absl::StatusOr<std::vector<v1::Chat>> chats = client_->ListAllChats();
  if (!chats.ok()) return chats.status();
  for (const v1::Chat& c : *chats) {
    auto it = seen_.find(c.chat_id());
    if (it == seen_.end()) {
      // A chat that appeared while disconnected: show it from the start.
      formatter_.RememberChat(c);
      seen_[c.chat_id()] = 0;
    } else if (c.last_seq() <= it->second) {
      continue;
    }
    if (absl::Status s = SyncFrom(c.chat_id(), stream); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Watcher::SyncFrom(const std::string& chat_id,
                               ConnectStream* stream) {
  uint64_t& seen = seen_[chat_id];
  for (int page = 0; page < 100000 && !stopping(); ++page) {
    absl::StatusOr<v1::SyncChatResponse> resp =
        client_->SyncChat(chat_id, seen, 500);
    if (!resp.ok()) {
      const absl::StatusCode code = resp.status().code();
      if (code == absl::StatusCode::kNotFound ||
          code == absl::StatusCode::kPermissionDenied ||
          code == absl::StatusCode::kFailedPrecondition) {
        *err_ << "watch: cannot sync chat " << chat_id << " ("
              << Brief(resp.status()) << ")" << std::endl;
        return absl::OkStatus();
      }
      return resp.status();
    }
    const uint64_t before = seen;
    for (const v1::ChatEvent& e : resp->events()) {
      if (e.seq() <= seen) continue;
      ShowEvent(e);
      seen = e.seq();
    }
    if (!resp->has_more() || seen == before) break;
  }
  SendAck(stream, chat_id);
  return absl::OkStatus();
}

absl::Status Watcher::HandleChatEvent(const v1::ChatEvent& event,
                                      ConnectStream* stream) {
  auto it = seen_.find(event.chat_id());
  // A chat never seen (e.g. just added to it) counts from seq 0.
  const uint64_t seen = it == seen_.end() ? 0 : it->second;
  if (event.seq() <= seen) return absl::OkStatus();  // duplicate
  if (event.seq() > seen + 1) {
    // Events went missing in between: replay them (and this one) in order.
    seen_[event.chat_id()] = seen;
    if (absl::Status s = SyncFrom(event.chat_id(), stream); !s.ok()) return s;
    // The log should hold this event by now; if it does not, showing it
    // beats dropping it.
    if (event.seq() <= seen_[event.chat_id()]) return absl::OkStatus();
  }
  ShowEvent(event);
  seen_[event.chat_id()] = event.seq();
  SendAck(stream, event.chat_id());
  return absl::OkStatus();
}

void Watcher::ShowEvent(const v1::ChatEvent& event) {
  *out_ << formatter_.FormatChatEvent(event) << std::endl;
}

void Watcher::SendAck(ConnectStream* stream, const std::string& chat_id) {
  const uint64_t seq = seen_[chat_id];
  if (seq == 0) return;
  v1::ClientFrame frame;
  frame.mutable_ack()->set_chat_id(chat_id);
  frame.mutable_ack()->set_seq(seq);
  WriteFrame(stream, frame);
}

bool Watcher::WriteFrame(ConnectStream* stream, const v1::ClientFrame& frame) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return stream->Write(frame);
}

}  // namespace parley::client
