#include "common/call_batcher.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace parley {
namespace {

using ::testing::ElementsAre;
using Batcher = CallBatcher<int, std::string>;
using Results = std::vector<absl::StatusOr<std::string>>;

// Records the batch calls it is asked to make and answers them on demand.
class Recorder {
 public:
  Batcher::Send send() {
    return [this](std::vector<int> items, std::chrono::milliseconds timeout,
                  Batcher::Finish finish) {
      std::lock_guard<std::mutex> lock(mu_);
      batches_.push_back(std::move(items));
      timeouts_.push_back(timeout);
      finishes_.push_back(std::move(finish));
    };
  }
  std::vector<std::chrono::milliseconds> timeouts() {
    std::lock_guard<std::mutex> lock(mu_);
    return timeouts_;
  }
  std::vector<std::vector<int>> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  // Answers batch `i`: each item's result is "r<item>".
  void Answer(size_t i) {
    Batcher::Finish finish;
    Results results;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int item : batches_[i])
        results.push_back("r" + std::to_string(item));
      finish = finishes_[i];
    }
    finish(std::move(results));
  }
  void Fail(size_t i, absl::Status status) {
    Batcher::Finish finish;
    {
      std::lock_guard<std::mutex> lock(mu_);
      finish = finishes_[i];
    }
    finish(std::move(status));
  }
  void AnswerWith(size_t i, Results results) {
    Batcher::Finish finish;
    {
      std::lock_guard<std::mutex> lock(mu_);
      finish = finishes_[i];
    }
    finish(std::move(results));
  }

 private:
  std::mutex mu_;
  std::vector<std::vector<int>> batches_;
  std::vector<std::chrono::milliseconds> timeouts_;
  std::vector<Batcher::Finish> finishes_;
};

// A deadline that no test waits out.
std::chrono::system_clock::time_point Later() {
  return std::chrono::system_clock::now() + std::chrono::seconds(30);
}

// Collects what each item's `done` got.
struct Outcomes {
  Batcher::Done For(int item) {
    return [this, item](absl::StatusOr<std::string> r) {
      std::lock_guard<std::mutex> lock(mu);
      got.emplace_back(item, std::move(r));
    };
  }
  std::mutex mu;
  std::vector<std::pair<int, absl::StatusOr<std::string>>> got;
};

TEST(CallBatcherTest, AnIdleItemLeavesAloneAtOnce) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 2}, rec.send());
  b.Submit(7, Later(), out.For(7));
  EXPECT_THAT(rec.batches(), ElementsAre(ElementsAre(7)));
  rec.Answer(0);
  ASSERT_EQ(out.got.size(), 1u);
  EXPECT_EQ(out.got[0].first, 7);
  EXPECT_EQ(*out.got[0].second, "r7");
  EXPECT_EQ(b.in_flight(), 0);
}

TEST(CallBatcherTest, ItemsArrivingDuringACallShareTheNextBatchInOrder) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 1}, rec.send());
  for (int i = 1; i <= 4; ++i) b.Submit(i, Later(), out.For(i));
  EXPECT_THAT(rec.batches(), ElementsAre(ElementsAre(1)));
  EXPECT_EQ(b.waiting(), 3u);
  rec.Answer(0);  // the slot passes to the three that gathered
  EXPECT_THAT(rec.batches(), ElementsAre(ElementsAre(1), ElementsAre(2, 3, 4)));
  rec.Answer(1);
  ASSERT_EQ(out.got.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out.got[i].first, i + 1);
    EXPECT_EQ(*out.got[i].second, "r" + std::to_string(i + 1));
  }
  EXPECT_EQ(b.in_flight(), 0);
  EXPECT_EQ(b.waiting(), 0u);
}

std::vector<Batcher::Entry> Entries(Outcomes* out, std::vector<int> items) {
  std::vector<Batcher::Entry> entries;
  for (int i : items) entries.push_back({i, out->For(i)});
  return entries;
}

TEST(CallBatcherTest, ItemsSubmittedTogetherLeaveTogetherWhileSlotsAreFree) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 8}, rec.send());
  b.SubmitAll(Entries(&out, {1, 2, 3, 4}), Later());
  // One call, not one per free slot: the four were one batch upstream.
  EXPECT_THAT(rec.batches(), ElementsAre(ElementsAre(1, 2, 3, 4)));
  EXPECT_EQ(b.in_flight(), 1);
  rec.Answer(0);
  ASSERT_EQ(out.got.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out.got[i].first, i + 1);
    EXPECT_EQ(*out.got[i].second, "r" + std::to_string(i + 1));
  }
  EXPECT_EQ(b.in_flight(), 0);
}

TEST(CallBatcherTest, ItemsSubmittedTogetherWaitTogetherForASlot) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 1}, rec.send());
  b.Submit(1, Later(), out.For(1));
  b.SubmitAll(Entries(&out, {2, 3}), Later());
  b.SubmitAll(Entries(&out, {4, 5}), Later());
  EXPECT_THAT(rec.batches(), ElementsAre(ElementsAre(1)));
  rec.Answer(0);
  EXPECT_THAT(rec.batches(),
              ElementsAre(ElementsAre(1), ElementsAre(2, 3, 4, 5)));
}

TEST(CallBatcherTest, ItemsSubmittedTogetherPastMaxBatchLeaveAsOneCall) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 1, .max_batch = 2}, rec.send());
  b.Submit(1, Later(), out.For(1));
  b.Submit(2, Later(), out.For(2));
  b.SubmitAll(Entries(&out, {3, 4, 5, 6, 7}), Later());
  b.Submit(8, Later(), out.For(8));
  // Split over calls (which may run at once), 3 to 7 could reach the
  // receiver out of order: the batch before them ends short of max_batch,
  // and they leave whole, alone.
  for (size_t i = 0; i < rec.batches().size(); ++i) rec.Answer(i);
  EXPECT_THAT(rec.batches(),
              ElementsAre(ElementsAre(1), ElementsAre(2),
                          ElementsAre(3, 4, 5, 6, 7), ElementsAre(8)));
  EXPECT_EQ(out.got.size(), 8u);
  EXPECT_EQ(b.in_flight(), 0);
}

TEST(CallBatcherTest, ABatchEndsBeforeItemsSubmittedTogetherItCannotHoldAll) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 1, .max_batch = 4}, rec.send());
  b.Submit(1, Later(), out.For(1));
  b.Submit(2, Later(), out.For(2));
  b.Submit(3, Later(), out.For(3));
  b.SubmitAll(Entries(&out, {4, 5, 6}), Later());
  b.SubmitAll(Entries(&out, {7, 8}), Later());
  // Four would fit, but 4, 5 and 6 go in one call: split over two calls
  // running at once, they could reach the receiver out of order.
  for (size_t i = 0; i < rec.batches().size(); ++i) rec.Answer(i);
  EXPECT_THAT(rec.batches(),
              ElementsAre(ElementsAre(1), ElementsAre(2, 3),
                          ElementsAre(4, 5, 6), ElementsAre(7, 8)));
  EXPECT_EQ(out.got.size(), 8u);
  EXPECT_EQ(b.in_flight(), 0);
}

TEST(CallBatcherTest, ItemsSubmittedTogetherPastTheQueueAreRefusedAlone) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 1, .max_batch = 256, .max_waiting = 2},
            rec.send());
  b.SubmitAll(Entries(&out, {1, 2, 3}), Later());
  // 1 and 2 fit the queue and leave; 3 is refused at once.
  ASSERT_EQ(out.got.size(), 1u);
  EXPECT_EQ(out.got[0].first, 3);
  EXPECT_EQ(out.got[0].second.status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(rec.batches(), ElementsAre(ElementsAre(1, 2)));
  rec.Answer(0);
  EXPECT_EQ(out.got.size(), 3u);
}

TEST(CallBatcherTest, SeveralCallsRunAtOnceUpToTheLimit) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 2}, rec.send());
  for (int i = 1; i <= 5; ++i) b.Submit(i, Later(), out.For(i));
  EXPECT_THAT(rec.batches(), ElementsAre(ElementsAre(1), ElementsAre(2)));
  EXPECT_EQ(b.in_flight(), 2);
  rec.Answer(1);
  EXPECT_THAT(rec.batches(), ElementsAre(ElementsAre(1), ElementsAre(2),
                                         ElementsAre(3, 4, 5)));
}

TEST(CallBatcherTest, BatchesAreCappedAtMaxBatch) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 1, .max_batch = 2}, rec.send());
  for (int i = 1; i <= 6; ++i) b.Submit(i, Later(), out.For(i));
  rec.Answer(0);
  rec.Answer(1);
  rec.Answer(2);
  EXPECT_THAT(rec.batches(), ElementsAre(ElementsAre(1), ElementsAre(2, 3),
                                         ElementsAre(4, 5), ElementsAre(6)));
}

TEST(CallBatcherTest, AFailedCallFailsEachOfItsItemsAndTheNextBatchGoes) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 1}, rec.send());
  b.Submit(1, Later(), out.For(1));
  b.Submit(2, Later(), out.For(2));
  b.Submit(3, Later(), out.For(3));
  rec.Answer(0);
  rec.Fail(1, absl::UnavailableError("storage down"));
  ASSERT_EQ(out.got.size(), 3u);
  EXPECT_TRUE(out.got[0].second.ok());
  EXPECT_EQ(out.got[1].second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(out.got[2].second.status().code(), absl::StatusCode::kUnavailable);
  b.Submit(4, Later(), out.For(4));
  EXPECT_EQ(rec.batches().size(), 3u) << "the batcher stalled after a failure";
}

TEST(CallBatcherTest, PerItemErrorsStayWithTheirItem) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 1}, rec.send());
  b.Submit(0, Later(), out.For(0));
  b.Submit(1, Later(), out.For(1));
  b.Submit(2, Later(), out.For(2));
  rec.Answer(0);
  rec.AnswerWith(
      1, {absl::PermissionDeniedError("not a member"), std::string("ok2")});
  ASSERT_EQ(out.got.size(), 3u);
  EXPECT_EQ(out.got[1].second.status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*out.got[2].second, "ok2");
}

TEST(CallBatcherTest, AWrongNumberOfResultsFailsTheBatch) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 1}, rec.send());
  b.Submit(0, Later(), out.For(0));
  rec.AnswerWith(0, {});
  ASSERT_EQ(out.got.size(), 1u);
  EXPECT_EQ(out.got[0].second.status().code(), absl::StatusCode::kInternal);
}

TEST(CallBatcherTest, AFullQueueRefusesAtOnce) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 1, .max_batch = 256, .max_waiting = 2},
            rec.send());
  b.Submit(1, Later(), out.For(1));  // in flight
  b.Submit(2, Later(), out.For(2));
  b.Submit(3, Later(), out.For(3));
  b.Submit(4, Later(), out.For(4));  // a third one waiting: refused
  ASSERT_EQ(out.got.size(), 1u);
  EXPECT_EQ(out.got[0].first, 4);
  EXPECT_EQ(out.got[0].second.status().code(),
            absl::StatusCode::kResourceExhausted);
  rec.Answer(0);
  rec.Answer(1);
  EXPECT_EQ(out.got.size(), 4u);
}

TEST(CallBatcherTest, ABatchCallLivesAsLongAsItsMostPatientItem) {
  Recorder rec;
  Outcomes out;
  Batcher b({.max_in_flight = 1}, rec.send());
  const auto now = std::chrono::system_clock::now();
  b.Submit(1, now + std::chrono::seconds(5), out.For(1));
  b.Submit(2, now + std::chrono::seconds(2), out.For(2));
  b.Submit(3, now + std::chrono::seconds(9), out.For(3));
  b.Submit(4, now - std::chrono::seconds(1), out.For(4));
  rec.Answer(0);
  ASSERT_EQ(rec.timeouts().size(), 2u);
  // Alone: its own deadline, less the little time that passed.
  EXPECT_GT(rec.timeouts()[0], std::chrono::milliseconds(4000));
  EXPECT_LE(rec.timeouts()[0], std::chrono::milliseconds(5000));
  // Together: the latest of 2 s, 9 s and one already past.
  EXPECT_GT(rec.timeouts()[1], std::chrono::milliseconds(8000));
  EXPECT_LE(rec.timeouts()[1], std::chrono::milliseconds(9000));

  // Only past deadlines: still a call, with the shortest timeout there is.
  b.Submit(5, now - std::chrono::seconds(1), out.For(5));
  rec.Answer(1);
  ASSERT_EQ(rec.timeouts().size(), 3u);
  EXPECT_EQ(rec.timeouts()[2], std::chrono::milliseconds(1));
  rec.Answer(2);
  EXPECT_EQ(out.got.size(), 5u);
}

// Many submitters, batches answered on another thread: every item is
// answered exactly once, with its own result, and the in-flight limit holds.
TEST(CallBatcherTest, ConcurrentSubmittersEachGetTheirOwnResultOnce) {
  constexpr int kThreads = 4, kPerThread = 2000;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<std::vector<int>, Batcher::Finish>> calls;
  bool stop = false;
  std::atomic<int> running{0}, max_running{0};
  Batcher b(
      {.max_in_flight = 3, .max_batch = 16},
      [&](std::vector<int> items, std::chrono::milliseconds,
          Batcher::Finish finish) {
        const int now = ++running;
        int seen = max_running.load();
        while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
        }
        std::lock_guard<std::mutex> lock(mu);
        calls.emplace_back(std::move(items), std::move(finish));
        cv.notify_one();
      });
  std::thread server([&] {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stop || !calls.empty(); });
      if (calls.empty()) return;
      auto call = std::move(calls.front());
      calls.pop_front();
      lock.unlock();
      Results results;
      for (int item : call.first) results.push_back(std::to_string(item));
      --running;
      call.second(std::move(results));
      lock.lock();
    }
  });
  std::vector<std::atomic<int>> answered(kThreads * kPerThread);
  std::atomic<int> wrong{0}, total{0};
  std::promise<void> all_answered;
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int item = t * kPerThread + i;
        b.Submit(item, Later(), [&, item](absl::StatusOr<std::string> r) {
          if (!r.ok() || *r != std::to_string(item)) ++wrong;
          ++answered[item];
          if (++total == kThreads * kPerThread) all_answered.set_value();
        });
      }
    });
  }
  for (auto& s : submitters) s.join();
  ASSERT_EQ(all_answered.get_future().wait_for(std::chrono::seconds(30)),
            std::future_status::ready)
      << total.load() << " answered";
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    cv.notify_one();
  }
  server.join();
  EXPECT_EQ(b.in_flight(), 0);
  EXPECT_EQ(wrong.load(), 0);
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    ASSERT_EQ(answered[i].load(), 1) << "item " << i;
  }
  EXPECT_LE(max_running.load(), 3);
}

}  // namespace
}  // namespace parley
