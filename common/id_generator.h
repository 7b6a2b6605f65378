// 64-bit time-ordered ids: 41 bits of milliseconds since 2024-01-01 UTC,
// 10 bits of node id, 12 bits of per-millisecond sequence. Ids from one
// generator strictly increase, also across a clock that steps backwards.
//
//   parley::IdGenerator ids(/*node_id=*/3);
//   int64_t id = ids.Next();
#ifndef PARLEY_COMMON_ID_GENERATOR_H_
#define PARLEY_COMMON_ID_GENERATOR_H_

#include <cstdint>
#include <functional>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"

namespace parley {

class IdGenerator {
 public:
  static constexpr int kNodeBits = 10;
  static constexpr int kSequenceBits = 12;
  static constexpr int64_t kMaxNode = (int64_t{1} << kNodeBits) - 1;
  // 2024-01-01T00:00:00Z in Unix milliseconds.
  static constexpr int64_t kEpochMs = 1704067200000;

  // `clock_ms` returns Unix milliseconds; tests may pass a fake clock.
  static absl::StatusOr<IdGenerator*> Create(
      int64_t node_id, std::function<int64_t()> clock_ms = nullptr);
  explicit IdGenerator(int64_t node_id,
                       std::function<int64_t()> clock_ms = nullptr);

  int64_t Next();

  // Parts of an id, for logs and tests.
  static int64_t TimestampMs(int64_t id);
  static int64_t Node(int64_t id);
  static int64_t Sequence(int64_t id);

 private:
  const int64_t node_id_;
  const std::function<int64_t()> clock_ms_;
  std::mutex mu_;
  int64_t last_ms_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace parley

#endif  // PARLEY_COMMON_ID_GENERATOR_H_
