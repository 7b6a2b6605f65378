// Watcher against a fake ChatService: baseline, live events, gap filling,
// duplicates, reconnect with catch-up, and stop.
#include "services/client/watch.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <sstream>
#include <streambuf>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/grpc_util.h"
#include "gtest/gtest.h"

namespace parley::client {
namespace {

// A thread-safe ostream target the test can read while the watcher writes.
class LockedBuf : public std::streambuf {
 public:
  std::string Text() {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }

 protected:
  int overflow(int c) override {
    if (c != EOF) {
      std::lock_guard<std::mutex> lock(mu_);
      text_.push_back(static_cast<char>(c));
    }
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::lock_guard<std::mutex> lock(mu_);
    text_.append(s, static_cast<size_t>(n));
    return n;
  }

 private:
  std::mutex mu_;
  std::string text_;
};

class FakeChatService final : public v1::ChatService::Service {
 public:
  // Appends an event to a chat's log and returns it.
  v1::ChatEvent Append(const std::string& chat_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& events = log_[chat_id];
    v1::ChatEvent e;
    e.set_chat_id(chat_id);
    e.set_seq(events.size() + 1);
    e.mutable_message_created()->set_sender_user_id("2");
    e.mutable_message_created()->set_text(absl::StrCat("m", e.seq()));
    events.push_back(e);
    return e;
  }
  void Push(const v1::ChatEvent& e) {
    std::lock_guard<std::mutex> lock(mu_);
    v1::ServerFrame f;
    *f.mutable_chat_event() = e;
    to_push_.push_back(f);
    cv_.notify_all();
  }
  void CloseStream() {
    std::lock_guard<std::mutex> lock(mu_);
    close_ = true;
    cv_.notify_all();
  }
  bool WaitForPongs(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10),
                        [&] { return pongs_ >= n; });
  }

  grpc::Status ListChats(grpc::ServerContext*, const v1::ListChatsRequest*,
                         v1::ListChatsResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, events] : log_) {
      v1::Chat* c = resp->add_chats();
      c->set_chat_id(id);
      c->set_type(v1::CHAT_TYPE_GROUP);
      c->add_member_user_ids("1");
      c->add_member_user_ids("2");
      c->set_last_seq(events.size());
    }
    return grpc::Status::OK;
  }

  grpc::Status SyncChat(grpc::ServerContext*, const v1::SyncChatRequest* req,
                        v1::SyncChatResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    const auto& events = log_[req->chat_id()];
    // Small pages to exercise paging.
    for (size_t i = req->after_seq(); i < events.size(); ++i) {
      if (resp->events_size() == 2) {
        resp->set_has_more(true);
        break;
      }
      *resp->add_events() = events[i];
    }
    return grpc::Status::OK;
  }

  grpc::Status Connect(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::ServerFrame, v1::ClientFrame>* stream)
      override {
    v1::ClientFrame first;
    if (!stream->Read(&first) || !first.has_ping()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ping first");
    }
    v1::ServerFrame pong;
    pong.mutable_pong()->set_nonce(first.ping().nonce());
    stream->Write(pong);
    std::unique_lock<std::mutex> lock(mu_);
    ++pongs_;
    cv_.notify_all();
    while (true) {
      cv_.wait_for(lock, std::chrono::milliseconds(50),
                   [&] { return !to_push_.empty() || close_; });
      if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
      if (close_) {
        close_ = false;
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "going away");
      }
      while (!to_push_.empty()) {
        stream->Write(to_push_.front());
        to_push_.pop_front();
      }
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<v1::ChatEvent>> log_;
  std::deque<v1::ServerFrame> to_push_;
  bool close_ = false;
  int pongs_ = 0;
};

// Takes a run of digits off the front of `s` into `digits`.
bool ConsumeDigits(absl::string_view& s, absl::string_view* digits) {
  size_t n = 0;
  while (n < s.size() && absl::ascii_isdigit(s[n])) ++n;
  if (n == 0) return false;
  *digits = s.substr(0, n);
  s.remove_prefix(n);
  return true;
}

// "chat#seq" of every "[chat C #S] 2: mN" line shown, in order.
std::vector<std::string> ShownEvents(const std::string& text) {
  std::vector<std::string> out;
  absl::string_view rest(text);
  for (size_t at = rest.find("[chat "); at != absl::string_view::npos;
       at = rest.find("[chat ")) {
    rest.remove_prefix(at + 1);
    absl::string_view s = rest.substr(5), chat, seq, n;
    if (ConsumeDigits(s, &chat) && absl::ConsumePrefix(&s, " #") &&
        ConsumeDigits(s, &seq) && absl::ConsumePrefix(&s, "] 2: m") &&
        ConsumeDigits(s, &n)) {
      out.push_back(absl::StrCat(chat, "#", seq));
    }
  }
  return out;
}

bool WaitForText(LockedBuf& buf, const std::string& needle) {
  for (int i = 0; i < 500; ++i) {
    if (buf.Text().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(WatcherTest, LiveGapsDuplicatesReconnectAndStop) {
  FakeChatService fake;
  fake.Append("1");
  fake.Append("1");  // history before the watch: not shown
  absl::StatusOr<RunningServer> server = StartServer(ServerOptions{}, {&fake});
  ASSERT_TRUE(server.ok()) << server.status();
  ChatClient client(MakeChannel(absl::StrCat("127.0.0.1:", server->port)),
                    "plt_test", std::chrono::seconds(5));

  LockedBuf out_buf, err_buf;
  std::ostream out(&out_buf), err(&err_buf);
  std::atomic<bool> stop{false};
  WatchOptions options;
  options.initial_backoff = std::chrono::milliseconds(50);
  options.should_stop = [&] { return stop.load(); };
  Watcher watcher(&client, "1", &out, &err, options);
  absl::Status result;
  std::thread run([&] { result = watcher.Run(); });

  ASSERT_TRUE(fake.WaitForPongs(1));
  fake.Push(fake.Append("1"));                // #3 live
  fake.Append("1");                           // #4 only in the log
  const v1::ChatEvent e5 = fake.Append("1");  // #5 live: gap -> sync #4
  fake.Push(e5);
  fake.Push(e5);                // duplicate
  fake.Push(fake.Append("1"));  // #6
  ASSERT_TRUE(WaitForText(out_buf, "[chat 1 #6]")) << out_buf.Text();

  // Missed while disconnected: #7, #8 and a new chat 2.
  fake.Append("1");
  fake.Append("1");
  fake.Append("2");
  fake.CloseStream();
  ASSERT_TRUE(fake.WaitForPongs(2));
  ASSERT_TRUE(WaitForText(out_buf, "[chat 2 #1]")) << out_buf.Text();
  ASSERT_TRUE(WaitForText(out_buf, "[chat 1 #8]")) << out_buf.Text();

  stop = true;
  run.join();
  EXPECT_TRUE(result.ok()) << result;
  EXPECT_EQ(ShownEvents(out_buf.Text()),
            (std::vector<std::string>{"1#3", "1#4", "1#5", "1#6", "1#7", "1#8",
                                      "2#1"}))
      << out_buf.Text();
  EXPECT_NE(err_buf.Text().find("disconnected (UNAVAILABLE: going away)"),
            std::string::npos)
      << err_buf.Text();
  server->server->Shutdown(std::chrono::system_clock::now() +
                           std::chrono::seconds(1));
}

TEST(WatcherTest, InvalidTokenIsFatal) {
  class Denying final : public v1::ChatService::Service {
    grpc::Status ListChats(grpc::ServerContext*, const v1::ListChatsRequest*,
                           v1::ListChatsResponse*) override {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
    }
  } denying;
  absl::StatusOr<RunningServer> server =
      StartServer(ServerOptions{}, {&denying});
  ASSERT_TRUE(server.ok()) << server.status();
  ChatClient client(MakeChannel(absl::StrCat("127.0.0.1:", server->port)),
                    "plt_test", std::chrono::seconds(5));
  std::ostringstream out, err;
  Watcher watcher(&client, "1", &out, &err, WatchOptions{});
  EXPECT_EQ(watcher.Run().code(), absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace parley::client
