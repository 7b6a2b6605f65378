#include "common/id_generator.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace parley {
namespace {

int64_t SystemClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

absl::StatusOr<IdGenerator*> IdGenerator::Create(
    int64_t node_id, std::function<int64_t()> clock_ms) {
  if (node_id < 0 || node_id > kMaxNode) {
    return absl::InvalidArgumentError(
        absl::StrCat("node_id must be in [0, ", kMaxNode, "], got ", node_id));
  }
  return new IdGenerator(node_id, std::move(clock_ms));
}

IdGenerator::IdGenerator(int64_t node_id, std::function<int64_t()> clock_ms)
    : node_id_(node_id & kMaxNode),
      clock_ms_(clock_ms ? std::move(clock_ms) : SystemClockMs) {}

int64_t IdGenerator::Next() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = clock_ms_() - kEpochMs;
  if (now < 0) now = 0;
  if (now <= last_ms_) {
    // Same millisecond, or the clock stepped back: keep counting on the last
    // timestamp, borrowing the next millisecond when the sequence runs out.
    if (++sequence_ > (int64_t{1} << kSequenceBits) - 1) {
      ++last_ms_;
      sequence_ = 0;
    }
  } else {
    last_ms_ = now;
    sequence_ = 0;
  }
  return (last_ms_ << (kNodeBits + kSequenceBits)) |
         (node_id_ << kSequenceBits) | sequence_;
}

int64_t IdGenerator::TimestampMs(int64_t id) {
  return (id >> (kNodeBits + kSequenceBits)) + kEpochMs;
}
int64_t IdGenerator::Node(int64_t id) {
  return (id >> kSequenceBits) & kMaxNode;
}
int64_t IdGenerator::Sequence(int64_t id) {
  return id & ((int64_t{1} << kSequenceBits) - 1);
}

}  // namespace parley
