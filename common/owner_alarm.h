// A grpc::Alarm whose callback reaches its owner only while the owner lives.
// The owner calls Detach before it goes; Detach waits for a callback in
// progress, and a later firing does nothing. The callback runs on a gRPC
// thread with the alarm's lock held: it must not wait for anything that
// calls Detach (it may start work that ends in Detach on another thread).
//
//   class Stream {
//     void Stall() { stall_.Set(deadline, [this] { OnStallTimeout(); }); }
//     void OnDone() {
//       stall_.Detach();
//       delete this;
//     }
//     parley::OwnerAlarm stall_;
//   };
#ifndef PARLEY_COMMON_OWNER_ALARM_H_
#define PARLEY_COMMON_OWNER_ALARM_H_

#include <grpcpp/alarm.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"

namespace parley {

class OwnerAlarm {
 public:
  OwnerAlarm() : target_(std::make_shared<Target>()) {}
  ~OwnerAlarm() { Detach(); }
  OwnerAlarm(const OwnerAlarm&) = delete;
  OwnerAlarm& operator=(const OwnerAlarm&) = delete;

  // Calls `fire` at `deadline`, unless Detach came first. At most once per
  // alarm, as with grpc::Alarm.
  void Set(std::chrono::system_clock::time_point deadline,
           std::function<void()> fire) {
    alarm_.Set(deadline,
               [target = target_, fire = std::move(fire)](bool fired) {
                 if (!fired) return;  // cancelled: the owner may be gone
                 std::lock_guard<std::mutex> lock(target->mu);
                 if (target->attached) fire();
               });
  }

  // From now on the alarm does not reach the owner.
  void Detach() {
    std::lock_guard<std::mutex> lock(target_->mu);
    target_->attached = false;
  }

 private:
  // Outlives the alarm's owner while a callback may still run.
  struct Target {
    std::mutex mu;
    bool attached ABSL_GUARDED_BY(mu) = true;
  };

  const std::shared_ptr<Target> target_;
  grpc::Alarm alarm_;
};

}  // namespace parley

#endif  // PARLEY_COMMON_OWNER_ALARM_H_
