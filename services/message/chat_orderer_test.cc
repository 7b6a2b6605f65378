#include "services/message/chat_orderer.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace parley::message {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// What was released, as (chat, seq), in release order.
class Log {
 public:
  ChatOrderer::Release Entry(int64_t chat, uint64_t seq) {
    return [this, chat, seq] {
      std::lock_guard<std::mutex> lock(mu_);
      entries_.push_back({chat, seq});
    };
  }
  std::vector<uint64_t> SeqsOf(int64_t chat) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> out;
    for (const auto& [c, s] : entries_) {
      if (c == chat) out.push_back(s);
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<int64_t, uint64_t>> entries_;
};

class ChatOrdererTest : public testing::Test {
 protected:
  ChatOrderer::Options Opts() {
    return {.max_hold = milliseconds(50),
            .max_held_per_chat = 1024,
            .forget_after = milliseconds(1000),
            .clock = [this] { return now_; }};
  }
  void Advance(milliseconds d) { now_ += d; }
  void Submit(ChatOrderer& o, int64_t chat, uint64_t seq) {
    o.Submit(chat, seq, log_.Entry(chat, seq));
  }

  steady_clock::time_point now_ =
      steady_clock::time_point() + std::chrono::hours(1);
  Log log_;
};

TEST_F(ChatOrdererTest, InOrderEventsGoOutAtOnce) {
  ChatOrderer o(Opts());
  for (uint64_t s = 1; s <= 4; ++s) Submit(o, 7, s);
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(o.held(), 0u);
}

TEST_F(ChatOrdererTest, ALaterSeqWaitsForTheGapToFill) {
  ChatOrderer o(Opts());
  Submit(o, 7, 1);
  Submit(o, 7, 3);
  Submit(o, 7, 4);
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1}));
  EXPECT_EQ(o.held(), 2u);
  // Another chat is not held up.
  Submit(o, 8, 10);
  Submit(o, 8, 11);
  EXPECT_EQ(log_.SeqsOf(8), (std::vector<uint64_t>{10, 11}));
  Submit(o, 7, 2);
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(o.held(), 0u);
  Submit(o, 7, 5);
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
}

TEST_F(ChatOrdererTest, AGapThatNeverFillsCostsAtMostMaxHold) {
  ChatOrderer o(Opts());
  Submit(o, 7, 1);
  Submit(o, 7, 4);  // 2 and 3 are never pushed here
  Advance(milliseconds(30));
  Submit(o, 7, 5);
  o.Expire();
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1}));
  Advance(milliseconds(20));  // seq 4 has waited 50 ms
  o.Expire();
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1, 4, 5}));
  EXPECT_EQ(o.held(), 0u);
  // The chat goes on from there; seq 2 turning up late goes out at once.
  Submit(o, 7, 6);
  Submit(o, 7, 2);
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1, 4, 5, 6, 2}));
}

TEST_F(ChatOrdererTest, RepeatsAndTheFirstEventSeenGoOutAtOnce) {
  ChatOrderer o(Opts());
  Submit(o, 7, 41);  // first of this chat here: nothing to wait for
  Submit(o, 7, 41);  // a retried send pushed again
  Submit(o, 7, 40);
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{41, 41, 40}));
  EXPECT_EQ(o.held(), 0u);
}

TEST_F(ChatOrdererTest, ANewChatWaitsForItsWritesInFlight) {
  ChatOrderer o(Opts());
  // A lone write's event goes out at once.
  o.Begin(7);
  Submit(o, 7, 1);
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1}));

  // Chat 8 is new here and three writes are in flight: whichever event
  // comes first waits for the others.
  for (int i = 0; i < 3; ++i) o.Begin(8);
  Submit(o, 8, 12);
  Submit(o, 8, 11);
  EXPECT_TRUE(log_.SeqsOf(8).empty());
  Submit(o, 8, 10);
  EXPECT_EQ(log_.SeqsOf(8), (std::vector<uint64_t>{10, 11, 12}));

  // A write that made no event ends the wait as well.
  o.Begin(9);
  o.Begin(9);
  Submit(o, 9, 4);
  EXPECT_TRUE(log_.SeqsOf(9).empty());
  o.Cancel(9);
  EXPECT_EQ(log_.SeqsOf(9), (std::vector<uint64_t>{4}));
  // From then on the chat is known: seq 6 waits for 5, whatever is in
  // flight.
  Submit(o, 9, 6);
  EXPECT_EQ(log_.SeqsOf(9), (std::vector<uint64_t>{4}));
  Submit(o, 9, 5);
  EXPECT_EQ(log_.SeqsOf(9), (std::vector<uint64_t>{4, 5, 6}));

  // A write that never ends holds a new chat's events for max_hold at most.
  o.Begin(10);
  o.Begin(10);
  Submit(o, 10, 3);
  Advance(milliseconds(49));
  o.Expire();
  EXPECT_TRUE(log_.SeqsOf(10).empty());
  Advance(milliseconds(1));
  o.Expire();
  EXPECT_EQ(log_.SeqsOf(10), (std::vector<uint64_t>{3}));
  EXPECT_EQ(o.held(), 0u);
}

TEST_F(ChatOrdererTest, TooManyHeldReleasesThemInOrder) {
  ChatOrderer::Options opts = Opts();
  opts.max_held_per_chat = 3;
  ChatOrderer o(opts);
  Submit(o, 7, 1);
  Submit(o, 7, 5);
  Submit(o, 7, 3);
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1}));
  Submit(o, 7, 4);
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1, 3, 4, 5}));
  EXPECT_EQ(o.held(), 0u);
  Submit(o, 7, 6);
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1, 3, 4, 5, 6}));
}

TEST_F(ChatOrdererTest, IdleChatsAreForgottenAndStopReleasesWhatIsHeld) {
  ChatOrderer o(Opts());
  Submit(o, 7, 1);
  Submit(o, 8, 1);
  Submit(o, 8, 3);
  EXPECT_EQ(o.chats(), 2u);
  Advance(milliseconds(1000));
  o.Expire();  // chat 8's seq 3 goes out (held too long); both are idle
  EXPECT_EQ(log_.SeqsOf(8), (std::vector<uint64_t>{1, 3}));
  o.Expire();
  Advance(milliseconds(1000));
  o.Expire();
  EXPECT_EQ(o.chats(), 0u);
  // Forgotten: its next event is the first again.
  Submit(o, 7, 9);
  Submit(o, 7, 11);
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1, 9}));
  o.Stop();
  EXPECT_EQ(log_.SeqsOf(7), (std::vector<uint64_t>{1, 9, 11}));
}

// Seqs submitted from several threads in any order come out in order when
// every seq arrives within max_hold of its successors.
TEST_F(ChatOrdererTest, ConcurrentSubmittersStillReleaseInSeqOrder) {
  ChatOrderer::Options opts;
  opts.max_hold = milliseconds(10000);  // real clock; nothing expires
  opts.max_held_per_chat = 1 << 20;     // nor overflows
  ChatOrderer o(opts);
  Submit(o, 7, 0);
  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Thread t submits t+1, t+1+kThreads, ...: interleaved with the rest.
      for (uint64_t i = 0; i < kPerThread; ++i) {
        const uint64_t seq = 1 + t + i * kThreads;
        o.Submit(7, seq, log_.Entry(7, seq));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint64_t> want(kThreads * kPerThread + 1);
  for (uint64_t i = 0; i < want.size(); ++i) want[i] = i;
  EXPECT_EQ(log_.SeqsOf(7), want);
  EXPECT_EQ(o.held(), 0u);
}

}  // namespace
}  // namespace parley::message
