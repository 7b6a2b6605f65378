#include "services/gateway/send_sequencer.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace parley::gateway {
namespace {

using ::testing::ElementsAre;

// Records the groups it is asked to start; answers them on demand.
class Starter {
 public:
  SendSequencer::Start start() {
    return [this](int64_t chat_id, std::vector<SendSequencer::Send> group) {
      std::vector<std::string> keys;
      for (const auto& s : group) keys.push_back(s.item.client_message_id());
      std::lock_guard<std::mutex> lock(mu_);
      chats_.push_back(chat_id);
      groups_.push_back(std::move(keys));
      sends_.push_back(std::move(group));
    };
  }
  std::vector<std::vector<std::string>> groups() {
    std::lock_guard<std::mutex> lock(mu_);
    return groups_;
  }
  std::vector<int64_t> chats() {
    std::lock_guard<std::mutex> lock(mu_);
    return chats_;
  }
  // Answers every send of group `i`, in order.
  void Answer(size_t i) {
    std::vector<SendSequencer::Send> group;
    {
      std::lock_guard<std::mutex> lock(mu_);
      group = std::move(sends_[i]);
    }
    for (auto& s : group) {
      ::parley::v1::Message m;
      m.set_text(s.item.client_message_id());
      s.done(std::move(m));
    }
  }

 private:
  std::mutex mu_;
  std::vector<int64_t> chats_;
  std::vector<std::vector<std::string>> groups_;
  std::vector<std::vector<SendSequencer::Send>> sends_;
};

SendSequencer::Send MakeSend(const std::string& key,
                             std::vector<std::string>* answered) {
  SendSequencer::Send s;
  s.item.set_client_message_id(key);
  s.done = [answered, key](absl::StatusOr<::parley::v1::Message> m) {
    answered->push_back(m.ok() ? key : key + ":" + m.status().ToString());
  };
  return s;
}

TEST(SendSequencerTest, AnIdlePairsSendLeavesAtOnce) {
  Starter st;
  std::vector<std::string> answered;
  SendSequencer seq({}, st.start());
  seq.Submit(1, 10, MakeSend("a", &answered));
  EXPECT_THAT(st.groups(), ElementsAre(ElementsAre("a")));
  EXPECT_THAT(st.chats(), ElementsAre(10));
  EXPECT_EQ(seq.active(), 1u);
  st.Answer(0);
  EXPECT_THAT(answered, ElementsAre("a"));
  EXPECT_EQ(seq.active(), 0u);  // an idle pair is forgotten
}

TEST(SendSequencerTest, SendsBehindOnesInFlightLeaveTogetherInOrder) {
  Starter st;
  std::vector<std::string> answered;
  SendSequencer seq({}, st.start());
  for (const char* k : {"a", "b", "c", "d"}) {
    seq.Submit(1, 10, MakeSend(k, &answered));
  }
  EXPECT_THAT(st.groups(), ElementsAre(ElementsAre("a")));
  st.Answer(0);
  EXPECT_THAT(st.groups(),
              ElementsAre(ElementsAre("a"), ElementsAre("b", "c", "d")));
  // What arrives while a group is out waits for all of it.
  seq.Submit(1, 10, MakeSend("e", &answered));
  EXPECT_EQ(st.groups().size(), 2u);
  st.Answer(1);
  EXPECT_THAT(st.groups().back(), ElementsAre("e"));
  st.Answer(2);
  EXPECT_THAT(answered, ElementsAre("a", "b", "c", "d", "e"));
  EXPECT_EQ(seq.active(), 0u);
}

TEST(SendSequencerTest, OtherChatsAndOtherStreamsDoNotWait) {
  Starter st;
  std::vector<std::string> answered;
  SendSequencer seq({}, st.start());
  seq.Submit(1, 10, MakeSend("s1c10", &answered));
  seq.Submit(1, 11, MakeSend("s1c11", &answered));
  seq.Submit(2, 10, MakeSend("s2c10", &answered));
  EXPECT_THAT(st.groups(),
              ElementsAre(ElementsAre("s1c10"), ElementsAre("s1c11"),
                          ElementsAre("s2c10")));
  EXPECT_THAT(st.chats(), ElementsAre(10, 11, 10));
  EXPECT_EQ(seq.active(), 3u);
  st.Answer(1);
  st.Answer(2);
  st.Answer(0);
  EXPECT_EQ(seq.active(), 0u);
}

TEST(SendSequencerTest, GroupsAreCappedAndTheRestWaitForTheNext) {
  Starter st;
  std::vector<std::string> answered;
  SendSequencer seq({.max_group = 2}, st.start());
  for (const char* k : {"a", "b", "c", "d", "e"}) {
    seq.Submit(1, 10, MakeSend(k, &answered));
  }
  st.Answer(0);
  EXPECT_THAT(st.groups().back(), ElementsAre("b", "c"));
  st.Answer(1);
  EXPECT_THAT(st.groups().back(), ElementsAre("d", "e"));
  st.Answer(2);
  EXPECT_THAT(answered, ElementsAre("a", "b", "c", "d", "e"));
  EXPECT_EQ(seq.active(), 0u);
}

TEST(SendSequencerTest, AGroupAnsweredInlineStartsTheNextInline) {
  std::vector<std::vector<std::string>> groups;
  std::vector<std::string> answered;
  bool fail_inline = false;
  std::vector<SendSequencer::Send> held;
  SendSequencer seq({}, [&](int64_t, std::vector<SendSequencer::Send> group) {
    std::vector<std::string> keys;
    for (const auto& s : group) keys.push_back(s.item.client_message_id());
    groups.push_back(keys);
    if (!fail_inline) {
      for (auto& s : group) held.push_back(std::move(s));
      return;
    }
    for (auto& s : group) s.done(absl::UnavailableError("down"));
  });
  seq.Submit(1, 10, MakeSend("a", &answered));
  seq.Submit(1, 10, MakeSend("b", &answered));
  seq.Submit(1, 10, MakeSend("c", &answered));
  fail_inline = true;
  held[0].done(::parley::v1::Message());
  // The group of b and c was started, and answered, from within a's answer.
  EXPECT_THAT(groups, ElementsAre(ElementsAre("a"), ElementsAre("b", "c")));
  ASSERT_EQ(answered.size(), 3u);
  EXPECT_EQ(answered[0], "a");
  EXPECT_THAT(answered[1], ::testing::StartsWith("b:UNAVAILABLE"));
  EXPECT_THAT(answered[2], ::testing::StartsWith("c:UNAVAILABLE"));
  EXPECT_EQ(seq.active(), 0u);
  // The pair starts afresh.
  seq.Submit(1, 10, MakeSend("d", &answered));
  EXPECT_THAT(groups.back(), ElementsAre("d"));
  EXPECT_THAT(held, ::testing::SizeIs(1));
}

// Several streams submit at once while other threads answer groups in
// whatever order they pick them up: each pair's sends still start in the
// order they were submitted, and each is answered once.
TEST(SendSequencerTest, ConcurrentStreamsKeepEachPairsOrder) {
  constexpr int kStreams = 4, kChats = 3, kSends = 300;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::vector<SendSequencer::Send>> pending;
  std::map<std::pair<uint64_t, int64_t>, std::vector<int>> started;
  // Sends of each pair started and not answered yet.
  std::map<std::pair<uint64_t, int64_t>, int> outstanding;
  int overlaps = 0;  // groups started while their pair had sends out
  bool stop = false;
  SendSequencer seq(
      {.max_group = 8},
      [&](int64_t chat_id, std::vector<SendSequencer::Send> group) {
        std::lock_guard<std::mutex> lock(mu);
        const std::pair<uint64_t, int64_t> pair{
            group.front().item.origin_stream_id(), chat_id};
        if (outstanding[pair] != 0) ++overlaps;
        outstanding[pair] += static_cast<int>(group.size());
        for (const auto& s : group) {
          started[pair].push_back(static_cast<int>(s.item.message_id()));
        }
        pending.push_back(std::move(group));
        cv.notify_one();
      });
  std::vector<std::thread> answerers;
  for (int t = 0; t < 3; ++t) {
    answerers.emplace_back([&] {
      for (;;) {
        std::vector<SendSequencer::Send> group;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return stop || !pending.empty(); });
          if (pending.empty()) return;
          // Newest first: groups are answered out of their start order.
          group = std::move(pending.back());
          pending.pop_back();
        }
        for (auto& s : group) {
          {
            std::lock_guard<std::mutex> lock(mu);
            --outstanding[{s.item.origin_stream_id(), s.item.chat_id()}];
          }
          s.done(::parley::v1::Message());
        }
      }
    });
  }
  int answered = 0;  // guarded by mu
  std::condition_variable all_answered;
  std::vector<std::thread> streams;
  for (int st = 1; st <= kStreams; ++st) {
    streams.emplace_back([&, st] {
      for (int i = 0; i < kSends; ++i) {
        SendSequencer::Send s;
        s.item.set_origin_stream_id(st);
        s.item.set_chat_id(i % kChats);
        s.item.set_message_id(i);
        s.done = [&](absl::StatusOr<::parley::v1::Message>) {
          std::lock_guard<std::mutex> lock(mu);
          if (++answered == kStreams * kSends) all_answered.notify_all();
        };
        seq.Submit(st, i % kChats, std::move(s));
      }
    });
  }
  for (auto& t : streams) t.join();
  {
    std::unique_lock<std::mutex> lock(mu);
    all_answered.wait_for(lock, std::chrono::seconds(30),
                          [&] { return answered == kStreams * kSends; });
    stop = true;
  }
  cv.notify_all();
  for (auto& t : answerers) t.join();
  EXPECT_EQ(answered, kStreams * kSends);
  EXPECT_EQ(seq.active(), 0u);
  EXPECT_EQ(overlaps, 0) << "a group started before its pair's last answer";
  ASSERT_EQ(started.size(), static_cast<size_t>(kStreams * kChats));
  for (const auto& [pair, order] : started) {
    std::vector<int> want;
    for (int i = pair.second; i < kSends; i += kChats) want.push_back(i);
    EXPECT_EQ(order, want) << "stream " << pair.first << ", chat "
                           << pair.second;
  }
}

}  // namespace
}  // namespace parley::gateway
